"""The configuration's fixed cost: without a configuration file nothing parses TOML."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

_CODE = ("import sys\nfrom soc.config import load_config\ncfg = load_config(env={'SOC_DATA_DIR': 'x'})\n"
         "print(cfg.data_dir, cfg.source, 'tomllib' in sys.modules)")


def test_no_configuration_file_no_toml_parser(tmp_path):
    done = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, cwd=tmp_path, check=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.stdout.split() == ["x", "None", "False"]
    (tmp_path / "soc.toml").write_text('data_dir = "y"\n')
    done = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, cwd=tmp_path, check=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.stdout.split() == ["x", "soc.toml", "True"]
