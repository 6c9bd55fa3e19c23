"""The `wavegms` command line: help for every subcommand, and one clear error for bad values."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from runs import make_run

from wavegms.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse: --help, usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_a_command_imports_only_what_it_runs() -> None:
    """`wavegms course` does not pay seconds for MONAI and diffusers, which only other
    commands need (`import monai` alone loads all of MONAI, about 3 s); nor does importing
    the metrics or the loss."""
    code = (
        "import sys\n"
        "from wavegms.cli import build_parser\n"
        "build_parser('course')\n"
        "print(sorted(m for m in ('monai', 'diffusers') if m in sys.modules))\n"
        "import wavegms.losses, wavegms.engine.metrics\n"
        "print('monai' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "False"]


def test_help_lists_the_subcommands(capsys) -> None:
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for command in ("train", "evaluate", "predict", "demo"):
        assert command in out


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("evaluate", ["--checkpoint", "--dataset", "--data", "--out", "--image-size", "--split"]),
        ("predict", ["--checkpoint", "IMAGE", "--out", "--save-probs", "--save-overlay"]),
        ("demo", ["--out"]),
    ],
)
def test_subcommand_help_is_complete(command, options, capsys) -> None:
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0
    for option in options:
        assert option in out, option


def test_demo_help_says_where_taesd_comes_from(capsys) -> None:
    # TAESD comes from $WAVEGMS_TAESD or the Hugging Face hub: the help never promises a run
    # "with no download".
    code, out, _ = run_cli(["demo", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "no download" not in text
    assert "$WAVEGMS_TAESD when set, else downloaded once from the Hugging Face hub" in text


@pytest.fixture
def run_dir(tmp_path, tiny_vae):  # noqa: ANN201
    return make_run(tmp_path / "run", tiny_vae)


def error_line(args: list[str], capsys) -> str:  # noqa: ANN001
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert f"wavegms {args[0]}: error: " in err
    return err.strip()


def test_evaluate_bad_values_fail_with_one_clear_line(run_dir, tmp_path, capsys) -> None:
    base = ["evaluate", "--checkpoint", str(run_dir), "--out", str(tmp_path / "eval")]

    message = error_line([*base, "--dataset", "busy"], capsys)
    assert "Unknown dataset 'busy'" in message and "busi" in message and "\n" not in message

    message = error_line([*base, "--image-size", "100"], capsys)
    assert "100" in message and "multiple of 8" in message and "\n" not in message

    message = error_line([*base, "--dataset", "bus"], capsys)  # no --data
    assert "python -m data_download bus --root DATA_DIR" in message and "\n" not in message

    # A data folder without bus/ prepared in it: the message names the preparing command.
    message = error_line([*base, "--dataset", "bus", "--data", str(tmp_path)], capsys)
    assert f"python -m data_download bus --root {tmp_path}" in message

    message = error_line([*base, "--split", "everything"], capsys)
    assert "Unknown split 'everything'" in message

    message = error_line(["evaluate", "--checkpoint", str(tmp_path / "no"), "--out", "x"], capsys)
    assert "No Wave-GMS checkpoint" in message
    assert not (tmp_path / "eval").exists()


def test_checkpoint_from_another_configuration_is_refused(run_dir, tmp_path, capsys) -> None:
    config_file = run_dir / "best" / "config.json"
    config = json.loads(config_file.read_text())
    config["lmm_base_channels"] = 16  # the weights were saved with 32
    config_file.write_text(json.dumps(config))

    message = error_line(
        ["evaluate", "--checkpoint", str(run_dir), "--out", str(tmp_path / "e")], capsys
    )
    assert "another configuration" in message and "\n" not in message
    image = tmp_path / "x.png"
    image.write_bytes(b"")  # never read: the checkpoint fails first
    message = error_line(
        ["predict", "--checkpoint", str(run_dir), str(image), "--out", str(tmp_path / "p")], capsys
    )
    assert "another configuration" in message


def test_predict_bad_values(run_dir, tmp_path, capsys) -> None:
    base = ["predict", "--checkpoint", str(run_dir), "--no-progress", "--out", str(tmp_path / "p")]
    assert "threshold" in error_line([*base, "--threshold", "2", str(tmp_path)], capsys)
    (tmp_path / "empty").mkdir()
    assert "No input images" in error_line([*base, str(tmp_path / "empty")], capsys)
    # Unreadable files only: each is reported, then the command fails.
    (tmp_path / "bad.png").write_bytes(b"not an image")
    message = error_line([*base, str(tmp_path / "bad.png"), str(tmp_path / "gone.jpg")], capsys)
    lines = [line for line in message.splitlines() if line.startswith("wavegms predict:")]
    assert "bad.png" in lines[0] and "gone.jpg" in lines[1] and len(lines) == 3
    assert "no mask written: every image failed (2" in lines[2]
