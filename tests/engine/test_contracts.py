"""Contract detection and conversion against real ONNX Runtime sessions of tiny graphs that carry
each export family's names, ranks and dtypes (built in ``onnx_graphs``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from sam2_annotator.engine.contracts import (
    CONTRACTS,
    ModelContract,
    OrtOfficialContract,
    OsamContract,
    OursContract,
    Signatures,
    detect_contract,
    signatures_from_sessions,
)
from sam2_annotator.engine.types import Embedding, TensorSpec
from sam2_annotator.errors import ModelError
from tests.engine import onnx_graphs as g


@dataclass(frozen=True)
class Family:
    encoder: g.EncoderSpec
    decoder: g.DecoderSpec
    contract: type[ModelContract]
    single_token: bool
    upsampled_logits: bool


FAMILIES = {
    "ours": Family(g.OURS_ENCODER, g.OURS_DECODER, OursContract, True, False),
    "samexporter": Family(g.OURS_ENCODER, g.SAMEXPORTER_DECODER, OursContract, False, False),
    "ort-multi": Family(g.ORT_ENCODER, g.ORT_DECODER_MULTI, OrtOfficialContract, False, False),
    "ort-single": Family(g.ORT_ENCODER, g.ORT_DECODER_SINGLE, OrtOfficialContract, False, False),
    "ort-logits": Family(g.ORT_ENCODER, g.ORT_DECODER_LOGITS, OrtOfficialContract, False, True),
    "osam": Family(g.OSAM_ENCODER, g.OSAM_DECODER, OsamContract, True, True),
}

IMAGE_VALUE = 0.5
ORIG_HW = (48, 80)
MASK_VALUE = 4.0
COORDS = np.array([[[10.0, 20.0], [300.0, 400.0], [150.0, 160.0]]], np.float32)
LABELS = np.array([[2, 3, 1]], np.int64)  # box corners first, then a positive point


@cache
def sessions(family: str) -> tuple[ort.InferenceSession, ort.InferenceSession]:
    spec = FAMILIES[family]
    return g.session(g.encoder_model(spec.encoder)), g.session(g.decoder_model(spec.decoder))


def signatures(family: str) -> Signatures:
    return signatures_from_sessions(*sessions(family))


def run(session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed), strict=True))


def encode(family: str, contract: ModelContract) -> Embedding:
    encoder, _ = sessions(family)
    image = np.full((1, 3, g.SIDE, g.SIDE), IMAGE_VALUE, np.float32)
    return contract.parse_encoder(run(encoder, {contract.encoder_input_name: image}), ORIG_HW)


def stub_signatures(
    enc_io: tuple[list[g.Tensor], list[g.Tensor]], dec_io: tuple[list[g.Tensor], list[g.Tensor]]
) -> Signatures:
    return signatures_from_sessions(
        g.session(g.stub_model(*enc_io)), g.session(g.stub_model(*dec_io))
    )


def detection_error(sigs: Signatures) -> str:
    with pytest.raises(ModelError) as info:
        detect_contract(*sigs)
    return str(info.value)


# --- each family ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_exactly_one_contract_matches_each_family(family: str) -> None:
    sigs = signatures(family)
    assert [c for c in CONTRACTS if c.matches(*sigs)] == [FAMILIES[family].contract]
    assert type(detect_contract(*sigs)) is FAMILIES[family].contract


@pytest.mark.parametrize("family", FAMILIES)
def test_encoder_outputs_map_to_our_embedding(family: str) -> None:
    embedding = encode(family, FAMILIES[family].contract())

    assert embedding.orig_hw == ORIG_HW
    for array, shape, offset in [
        (embedding.image_embed, g.EMBED_SHAPE, g.EMBED_OFFSET),
        (embedding.high_res_feats_0, g.FEAT0_SHAPE, g.FEAT0_OFFSET),
        (embedding.high_res_feats_1, g.FEAT1_SHAPE, g.FEAT1_OFFSET),
    ]:
        assert array.shape == tuple(shape)
        assert array.dtype == np.float32
        np.testing.assert_allclose(array, IMAGE_VALUE + offset)


@pytest.mark.parametrize("has_mask", [True, False])
@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_feed_runs_and_parses(family: str, has_mask: bool) -> None:
    spec = FAMILIES[family]
    contract = spec.contract()
    _, decoder = sessions(family)
    embedding = encode(family, contract)
    mask_input = np.full((1, 1, 256, 256), MASK_VALUE, np.float32)

    feed = contract.decoder_feed(embedding, COORDS, LABELS, mask_input, has_mask)
    assert sorted(feed) == sorted(i.name for i in decoder.get_inputs())
    outputs = run(decoder, feed)  # ONNX Runtime rejects any wrong name, dtype or rank
    result = contract.parse_decoder(outputs)

    k = spec.decoder.candidates
    feature_means = tuple(IMAGE_VALUE + o for o in (g.EMBED_OFFSET, g.FEAT0_OFFSET, g.FEAT1_OFFSET))
    # The graph sees exactly our three points: no padding point was added by the feed.
    expected = [
        g.expected_low_res(c, len(COORDS[0]), has_mask, MASK_VALUE, feature_means) for c in range(k)
    ]
    assert result.low_res_logits.shape == (k, 256, 256)
    assert result.low_res_logits.dtype == np.float32
    np.testing.assert_allclose(result.low_res_logits.mean(axis=(1, 2)), expected, rtol=1e-6)
    np.testing.assert_allclose(result.low_res_logits.std(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(
        result.iou_predictions, [g.expected_iou(c, LABELS.sum()) for c in range(k)], rtol=1e-6
    )
    assert result.single_token is spec.single_token
    if spec.upsampled_logits:
        assert result.upsampled_logits is not None
        assert result.upsampled_logits.shape == (k, *ORIG_HW)
        np.testing.assert_allclose(result.upsampled_logits[:, 0, 0], expected, rtol=1e-6)
    else:
        assert result.upsampled_logits is None
    if spec.decoder.orig_size is not None:  # the graph upsampled to the (H, W) we fed
        assert outputs["masks"].shape == (1, k, *ORIG_HW)


def test_feed_uses_each_graphs_dtypes() -> None:
    feeds = {}
    for family in ("ours", "ort-multi", "osam"):
        contract = FAMILIES[family].contract()
        mask = np.zeros((1, 1, 256, 256), np.float32)
        feeds[family] = contract.decoder_feed(encode(family, contract), COORDS, LABELS, mask, False)

    assert feeds["ours"]["point_labels"].dtype == np.float32
    assert feeds["ort-multi"]["point_labels"].dtype == np.int32
    assert feeds["ort-multi"]["original_image_size"].dtype == np.int32
    assert feeds["osam"]["orig_im_size"].dtype == np.int64
    assert feeds["osam"]["orig_im_size"].tolist() == list(ORIG_HW)
    assert feeds["ort-multi"]["point_coords"].shape == COORDS.shape


# --- signatures -------------------------------------------------------------------------------


def test_signatures_from_sessions_reads_names_shapes_and_dtypes() -> None:
    sigs = signatures("ort-multi")

    assert list(sigs.dec_in)[:3] == ["image_embeddings", "image_features_0", "image_features_1"]
    assert sigs.dec_in["point_coords"] == TensorSpec(
        "point_coords", (1, "num_points", 2), "tensor(float)"
    )
    assert sigs.dec_in["point_labels"].dtype == "tensor(int32)"
    assert sigs.dec_out["masks"].dtype == "tensor(bool)"
    assert sigs.enc_in["image"].shape == (1, 3, g.SIDE, g.SIDE)
    assert sigs.enc_out["image_features_0"].rank == 4


def test_output_without_declared_shape_still_matches() -> None:
    sigs = signatures("osam")
    dec_out = {**sigs.dec_out, "masks": TensorSpec("masks", (), "tensor(float)")}

    assert type(detect_contract(sigs.enc_in, sigs.enc_out, sigs.dec_in, dec_out)) is OsamContract


# --- unknown and broken files -----------------------------------------------------------------


def test_sam1_model_gets_a_hint_and_the_full_picture() -> None:
    message = detection_error(stub_signatures(g.SAM1_ENCODER_IO, g.SAM1_DECODER_IO))

    assert "SAM (version 1)" in message
    assert "Found: encoder inputs [image [1, 3, 1024, 1024] float]" in message
    assert "image_embeddings [1, 256, 64, 64] float" in message
    for contract in CONTRACTS:
        assert contract.expectation() in message


def test_missing_input_is_named() -> None:
    inputs, outputs = g.decoder_io(g.OSAM_DECODER)
    inputs = [t for t in inputs if t.name != "orig_im_size"]

    message = detection_error(stub_signatures(g.encoder_io(g.OSAM_ENCODER), (inputs, outputs)))

    assert "Closest is osam" in message
    assert "decoder input 'orig_im_size' (rank 1) is missing" in message


def test_wrong_rank_is_named() -> None:
    inputs, outputs = g.decoder_io(g.OURS_DECODER)
    inputs = [
        dataclasses.replace(t, shape=[1, "num_points", 1]) if t.name == "point_labels" else t
        for t in inputs
    ]

    message = detection_error(stub_signatures(g.encoder_io(g.OURS_ENCODER), (inputs, outputs)))

    assert "Closest is sam2-annotator" in message
    assert "decoder input 'point_labels' has rank 3 [1, 'num_points', 1], expected rank 2" in (
        message
    )


def test_wrong_dtype_is_named() -> None:
    spec = dataclasses.replace(g.ORT_DECODER_MULTI, labels_dtype=TensorProto.FLOAT)
    sigs = signatures_from_sessions(
        g.session(g.encoder_model(g.ORT_ENCODER)), g.session(g.decoder_model(spec))
    )

    message = detection_error(sigs)

    assert "Closest is onnxruntime-sam2" in message
    assert "decoder input 'point_labels' is float, expected int32" in message


def test_input_the_contract_does_not_feed_is_rejected() -> None:
    inputs, outputs = g.decoder_io(g.OURS_DECODER)
    inputs = [*inputs, g.Tensor("orig_im_size", TensorProto.INT64, [2])]

    message = detection_error(stub_signatures(g.encoder_io(g.OURS_ENCODER), (inputs, outputs)))

    assert "decoder has an input 'orig_im_size' that this contract does not feed" in message


def test_swapped_files_get_a_hint() -> None:
    enc_in, enc_out, dec_in, dec_out = signatures("ours")

    message = detection_error(Signatures(dec_in, dec_out, enc_in, enc_out))

    assert "swapped" in message


def test_encoder_and_decoder_of_different_families_are_refused() -> None:
    enc_in, enc_out, _, _ = signatures("ours")
    _, _, dec_in, dec_out = signatures("osam")

    message = detection_error(Signatures(enc_in, enc_out, dec_in, dec_out))

    assert "encoder output 'image_embeddings' (rank 4) is missing" in message


def test_parse_decoder_refuses_masks_and_scores_of_different_counts() -> None:
    outputs = {
        "masks": np.zeros((1, 1, 256, 256), np.float32),
        "iou_predictions": np.zeros((1, 4), np.float32),
    }

    with pytest.raises(ModelError, match=r"masks \[1, 1, 256, 256\] and scores \[1, 4\]"):
        OursContract().parse_decoder(outputs)


def test_parse_encoder_refuses_swapped_feature_maps() -> None:
    outputs = {
        "image_embeddings": np.zeros((1, 256, 4, 4), np.float32),
        "high_res_features1": np.zeros((1, 64, 8, 8), np.float32),
        "high_res_features2": np.zeros((1, 32, 16, 16), np.float32),
    }

    with pytest.raises(ModelError, match=r"'high_res_features1' has shape \[1, 64, 8, 8\]"):
        OsamContract().parse_encoder(outputs, ORIG_HW)


def test_contract_names_are_unique() -> None:
    names = [c.name for c in CONTRACTS]
    assert len(set(names)) == len(names)
