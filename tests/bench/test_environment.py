"""The machine description stored with every bench/eval result: CPU model and ISA flags."""

from __future__ import annotations

import pytest

from sam2_annotator.bench import environment
from sam2_annotator.bench.environment import ISA_FLAGS, isa_info, isa_summary, machine_info
from sam2_annotator.bench.peak import flop_per_cycle
from sam2_annotator.bench.report import machine_line

ZEN3 = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2 sha_ni vaes"
SKYLAKE_X = ZEN3 + " avx512f avx512dq avx512cd avx512bw avx512vl"
ICE_LAKE = SKYLAKE_X + " avx512_vnni avx512_vbmi2"
ALDER_LAKE = ZEN3 + " avx_vnni"
SAPPHIRE_RAPIDS = ICE_LAKE + " avx512_bf16 amx_bf16 amx_tile amx_int8"


@pytest.mark.parametrize(
    ("flags", "int8_dot", "amx"),
    [
        (ZEN3, "vpmaddubsw", False),
        (SKYLAKE_X, "vpmaddubsw", False),  # AVX-512 without VNNI saturates like AVX2
        (ICE_LAKE, "vnni", False),
        (ALDER_LAKE, "vnni", False),
        (SAPPHIRE_RAPIDS, "amx", True),
        ("fp asimd asimddp", "other", False),  # ARM (Features line)
    ],
)
def test_isa_info_names_the_int8_kernel_family(flags: str, int8_dot: str, amx: bool) -> None:
    isa = isa_info(frozenset(flags.split()))
    assert set(ISA_FLAGS) <= set(isa)
    assert isa["int8_dot"] == int8_dot and isa["amx"] is amx
    assert isa["avx2"] is ("avx2" in flags.split())
    assert int8_dot in isa_summary(isa)


def test_flags_are_read_from_proc_cpuinfo(tmp_path, monkeypatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        f"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
        f"model name\t: AMD EPYC 7B13\nflags\t\t: {ZEN3}\n\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(environment, "_CPUINFO", cpuinfo)
    assert environment.cpu_model() == "AMD EPYC 7B13"
    assert environment.cpu_flags() == frozenset(ZEN3.split())
    machine = machine_info()
    assert machine["cpu"] == "AMD EPYC 7B13"
    assert machine["cpu_id"] == {"vendor": "AuthenticAMD", "family": 25, "model": 1}
    assert machine["isa"]["avx2"] is True and machine["isa"]["avx512f"] is False
    assert machine["isa"]["int8_dot"] == "vpmaddubsw"
    line = machine_line(machine)
    assert line.startswith("AMD EPYC 7B13 (family 25 model 1, ")
    assert "no avx512f, avx512_vnni, avx_vnni, amx" in line


def test_unknown_flags_are_recorded_as_unknown(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(environment, "_CPUINFO", tmp_path / "absent")
    monkeypatch.setattr(environment, "_py_cpuinfo_flags", lambda: None)
    isa = machine_info()["isa"]
    assert all(value is None for value in isa.values())
    assert isa_summary(isa) == "ISA flags unknown"


def test_this_machine_is_described() -> None:
    machine = machine_info()
    assert machine["cpu"] and machine["cpus"] >= 1
    assert {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx", "int8_dot"} <= set(machine["isa"])


@pytest.mark.parametrize(
    ("flags", "cpu", "per_cycle"),
    [
        ("avx2 fma", {"vendor": "AuthenticAMD", "family": 25}, 32.0),  # Zen 3
        ("avx2 fma avx512f", {"vendor": "AuthenticAMD", "family": 25}, 32.0),  # Zen 4: split
        ("avx2 fma avx512f", {"vendor": "AuthenticAMD", "family": 26}, 64.0),  # Zen 5
        ("avx2 fma avx512f", {"vendor": "GenuineIntel", "family": 6}, 64.0),
        ("avx2 fma avx512f", None, 64.0),  # family unknown: the upper bound
        ("sse2", None, 8.0),
    ],
)
def test_fp32_flop_per_cycle_knows_zen4_splits_avx512(flags, cpu, per_cycle) -> None:
    got, assumption = flop_per_cycle(frozenset(flags.split()), cpu)
    assert got == per_cycle and assumption
