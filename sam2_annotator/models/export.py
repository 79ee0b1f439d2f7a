"""Export SAM2 / SAM2.1 checkpoints to our ONNX contract (export time only: needs torch + sam2).

torch and sam2 are imported inside the functions that need them, so that importing this module
(for ``--help``, or the architecture test) never loads torch.

The graphs follow the samexporter names shared by most third-party tools:

* encoder ``image`` [1,3,1024,1024] -> ``high_res_feats_0`` [1,32,256,256],
  ``high_res_feats_1`` [1,64,128,128], ``image_embed`` [1,256,64,64]; ``conv_s0``/``conv_s1`` of
  the mask decoder and ``no_mem_embed`` are folded in, as ``SAM2ImagePredictor.set_image``
  computes its features (each ``conv_s*`` composed with the neck's lateral 1x1 convolution into
  one, ``export_neck``);
* decoder ``image_embed, high_res_feats_0, high_res_feats_1, point_coords [1,N,2] f32,
  point_labels [1,N] f32, mask_input [1,1,256,256], has_mask_input [1]`` -> ``masks``
  [1,4,256,256] (low-res logits of all four mask tokens, token 0 = single-mask output),
  ``iou_predictions`` [1,4]. N is dynamic; SAM's padding point is added inside the graph.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sam2_annotator import __version__
from sam2_annotator.engine.manifest import FileEntry, Manifest, sha256_file
from sam2_annotator.engine.types import INPUT_SIZE, LOW_RES
from sam2_annotator.errors import ModelError, UserError
from sam2_annotator.models.export_attention import encoder_attention_for_onnx
from sam2_annotator.models.export_neck import high_res_projections_folded

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

OPSET = 17
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
#: The graphs' I/O names, in the order the torch wrappers take and return them.
ENCODER_OUTPUTS = ("high_res_feats_0", "high_res_feats_1", "image_embed")
DECODER_INPUTS = (
    "image_embed",
    "high_res_feats_0",
    "high_res_feats_1",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
)
DECODER_OUTPUTS = ("masks", "iou_predictions")
#: The modules whose code decides what the image graphs hold.
EXPORTER_MODULES = ("export", "export_attention", "export_neck")
INSTALL_HINT = (
    "exporting needs the export extra: pip install 'sam2-annotator[export]' and "
    "SAM2_BUILD_CUDA=0 pip install --no-deps --no-build-isolation sam2==1.1.0"
)


@dataclass(frozen=True)
class Variant:
    """One SAM2 architecture: the hydra config the ``sam2`` package ships for it."""

    name: str
    config: str
    checkpoint_name: str


def _variants() -> dict[str, Variant]:
    table: dict[str, Variant] = {}
    sizes = {"t": "tiny", "s": "small", "b+": "base_plus", "l": "large"}
    for short, long in sizes.items():
        v21 = Variant(
            f"sam2.1_hiera_{short}",
            f"configs/sam2.1/sam2.1_hiera_{short}.yaml",
            f"sam2.1_hiera_{long}.pt",
        )
        v20 = Variant(
            f"sam2_hiera_{short}", f"configs/sam2/sam2_hiera_{short}.yaml", f"sam2_hiera_{long}.pt"
        )
        for v, long_name in ((v21, f"sam2.1_hiera_{long}"), (v20, f"sam2_hiera_{long}")):
            table[v.name] = v
            table[long_name] = v
    return table


#: Accepted ``--config`` names (short ``sam2.1_hiera_t`` and long ``sam2.1_hiera_tiny`` forms).
VARIANTS: dict[str, Variant] = _variants()


def resolve_variant(name: str) -> Variant:
    key = name.removesuffix(".yaml").split("/")[-1]
    if key not in VARIANTS:
        names = sorted({v.name for v in VARIANTS.values()})
        raise UserError(f"unknown SAM2 config {name!r}; choose one of: {', '.join(names)}")
    return VARIANTS[key]


def _import_torch() -> Any:
    try:
        import torch
        from sam2.build_sam import build_sam2  # noqa: F401
    except ImportError as exc:
        raise UserError(f"{INSTALL_HINT} ({exc})") from exc
    return torch


def build_model(variant: Variant, checkpoint: Path | None, seed: int) -> torch.nn.Module:
    """The SAM2 model in eval mode: trained weights from ``checkpoint``, or random init."""
    torch = _import_torch()
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    if checkpoint is not None and not checkpoint.is_file():
        raise UserError(f"checkpoint not found: {checkpoint}")
    try:
        model = build_sam2(
            variant.config,
            ckpt_path=str(checkpoint) if checkpoint else None,
            device="cpu",
            mode="eval",
        )
    except (RuntimeError, KeyError) as exc:
        raise ModelError(
            f"cannot load {checkpoint} as {variant.name}: {str(exc).splitlines()[0]} "
            "(does the checkpoint match the config?)"
        ) from exc
    return model


def prompt_embeddings(
    pe: Any, point_coords: Any, point_labels: Any, mask_input: Any, has_mask_input: Any
) -> tuple[Any, Any]:
    """SAM2's prompt encoder as the exported decoders compute it: padded point embeddings, and
    the mask embedding or ``no_mask_embed`` chosen by the ``has_mask_input`` flag in-graph."""
    sparse = pe._embed_points(point_coords, point_labels, pad=True)
    no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *pe.image_embedding_size)
    flag = has_mask_input.reshape(1, 1, 1, 1)
    dense = flag * pe._embed_masks(mask_input) + (1.0 - flag) * no_mask
    return sparse, dense


def torch_wrappers() -> tuple[type, type]:
    """Define the torch wrapper modules lazily (their base class needs torch)."""
    torch = _import_torch()
    nn = torch.nn

    class EncoderWrapper(nn.Module):
        """``SAM2ImagePredictor.set_image`` without pre-processing."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model
            self.feat_sizes = [(INPUT_SIZE // s, INPUT_SIZE // s) for s in (4, 8, 16)]

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
            backbone_out = self.model.forward_image(image)
            _, vision_feats, _, _ = self.model._prepare_backbone_features(backbone_out)
            if self.model.directly_add_no_mem_embed:
                vision_feats[-1] = vision_feats[-1] + self.model.no_mem_embed
            feats = [
                feat.permute(1, 2, 0).reshape(1, -1, *size)
                for feat, size in zip(vision_feats, self.feat_sizes, strict=True)
            ]
            return feats[0], feats[1], feats[2]

    class DecoderWrapper(nn.Module):
        """Prompt encoder + mask decoder returning every mask token's logits."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.prompt_encoder = model.sam_prompt_encoder
            self.mask_decoder = model.sam_mask_decoder

        def forward(
            self,
            image_embed: torch.Tensor,
            high_res_feats_0: torch.Tensor,
            high_res_feats_1: torch.Tensor,
            point_coords: torch.Tensor,
            point_labels: torch.Tensor,
            mask_input: torch.Tensor,
            has_mask_input: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            pe = self.prompt_encoder
            sparse, dense = prompt_embeddings(
                pe, point_coords, point_labels, mask_input, has_mask_input
            )
            masks, iou_pred, _, _ = self.mask_decoder.predict_masks(
                image_embeddings=image_embed,
                image_pe=pe.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                repeat_image=False,
                high_res_features=[high_res_feats_0, high_res_feats_1],
            )
            return masks, iou_pred

    return EncoderWrapper, DecoderWrapper


def exporter_fingerprint(*more_modules: str) -> str:
    """12 hex digits that change with torch's version and the code of :data:`EXPORTER_MODULES`
    and ``more_modules`` (names under ``sam2_annotator.models``): a cached export with another
    fingerprint is stale. Reads torch's version from its metadata, without importing it."""
    from importlib.metadata import version

    digest = hashlib.sha256(version("torch").encode())
    for name in (*EXPORTER_MODULES, *more_modules):
        module = importlib.import_module(f"sam2_annotator.models.{name}")
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:12]


def export_model(
    config: str,
    out_dir: Path,
    checkpoint: Path | None = None,
    seed: int = 0,
) -> Manifest:
    """Export the encoder and decoder ONNX files and write ``manifest.json`` into ``out_dir``.

    ``checkpoint=None`` means random init (tests and benchmarks); the manifest says so.
    """
    torch = _import_torch()
    variant = resolve_variant(config)
    model = build_model(variant, checkpoint, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_wrapper, decoder_wrapper = torch_wrappers()
    # The TorchScript exporter is deprecated in favour of dynamo, but dynamo fails on SAM2's
    # decoder with torch 2.13; we use the old one on purpose, so its warning is noise.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        # SAM2's shape checks become constants in the trace; that is right because the encoder
        # input is always 1024x1024 and only the decoder's point count is dynamic.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        _export_encoder(torch, encoder_wrapper(model).eval(), out_dir / ENCODER_FILE)
        _export_decoder(torch, decoder_wrapper(model).eval(), out_dir / DECODER_FILE)
    manifest = _manifest(torch, variant, out_dir, checkpoint, seed)
    manifest.write(out_dir)
    log.info("exported %s to %s", manifest.display_name, out_dir)
    return manifest


def export_folder(
    config: str,
    out_dir: Path,
    checkpoint: Path | None = None,
    seed: int = 0,
    precision: str = "fp32",
    video: bool = True,
    fp32_dir: Path | None = None,
) -> tuple[Manifest, Any]:
    """What ``models export`` writes into ``out_dir``: the image pair at ``precision`` (converted
    from an fp32 export: ``fp32_dir`` when given, else a temporary one) and, with ``video``, the
    fp32 video graphs. Returns the manifest and the video manifest (None without video)."""
    out_dir = Path(out_dir)
    if precision == "fp32":
        manifest = export_model(config, out_dir, checkpoint, seed)
    else:
        import tempfile

        from sam2_annotator.models.precision import convert_precision

        if fp32_dir is not None:
            manifest = convert_precision(Path(fp32_dir), out_dir, precision)
        else:
            with tempfile.TemporaryDirectory(prefix="sam2-fp32-") as tmp:
                export_model(config, Path(tmp), checkpoint, seed)
                manifest = convert_precision(Path(tmp), out_dir, precision)
    video_manifest = None
    if video:
        from sam2_annotator.models.export_video import add_video_graphs

        video_manifest = add_video_graphs(config, out_dir, checkpoint, seed)
    return manifest, video_manifest


def _export_encoder(torch: Any, wrapper: Any, path: Path) -> None:
    image = torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE)
    with encoder_attention_for_onnx(torch), high_res_projections_folded(torch, wrapper.model):
        _trace_encoder(torch, wrapper, image, path)


def _trace_encoder(torch: Any, wrapper: Any, image: Any, path: Path) -> None:
    torch.onnx.export(
        wrapper,
        (image,),
        str(path),
        input_names=["image"],
        output_names=list(ENCODER_OUTPUTS),
        opset_version=OPSET,
        dynamo=False,
    )


def _export_decoder(torch: Any, wrapper: Any, path: Path) -> None:
    embed_dim = 256
    args = (
        torch.randn(1, embed_dim, INPUT_SIZE // 16, INPUT_SIZE // 16),
        torch.randn(1, embed_dim // 8, INPUT_SIZE // 4, INPUT_SIZE // 4),
        torch.randn(1, embed_dim // 4, INPUT_SIZE // 8, INPUT_SIZE // 8),
        torch.randint(0, INPUT_SIZE, (1, 3, 2)).float(),
        torch.tensor([[1.0, 0.0, 1.0]]),
        torch.randn(1, 1, LOW_RES, LOW_RES),
        torch.tensor([1.0]),
    )
    torch.onnx.export(
        wrapper,
        args,
        str(path),
        input_names=list(DECODER_INPUTS),
        output_names=list(DECODER_OUTPUTS),
        dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
        opset_version=OPSET,
        dynamo=False,
    )


def _io_of(path: Path) -> dict[str, list[dict[str, Any]]]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {
        kind: [{"name": a.name, "shape": list(a.shape), "dtype": a.type} for a in args]
        for kind, args in (("inputs", session.get_inputs()), ("outputs", session.get_outputs()))
    }


def _manifest(
    torch: Any, variant: Variant, out_dir: Path, checkpoint: Path | None, seed: int
) -> Manifest:
    import sam2

    files = {}
    for name in (ENCODER_FILE, DECODER_FILE):
        path = out_dir / name
        files[name] = FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)
    source = None
    if checkpoint is not None:
        source = {"file": checkpoint.name, "sha256": sha256_file(checkpoint)}
    return Manifest(
        variant=variant.name,
        weights="checkpoint" if checkpoint is not None else "random-init",
        files=files,
        seed=None if checkpoint is not None else seed,
        io={"encoder": _io_of(out_dir / ENCODER_FILE), "decoder": _io_of(out_dir / DECODER_FILE)},
        source_checkpoint=source,
        exporter={
            "sam2_annotator": __version__,
            "torch": torch.__version__,
            "sam2": getattr(sam2, "__version__", "unknown"),
            "opset": OPSET,
        },
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
