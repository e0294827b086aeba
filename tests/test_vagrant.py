"""The dev VM: its provisioning script runs here (as CI does), and `vagrant validate` passes.

No VM can boot on this machine; what can be checked is checked: the provisioning script is
the real set-up path (packages, headers, venv, doctor), and Vagrant parses the Vagrantfile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.bpf
def test_provision_script_sets_up_a_working_venv(tmp_path):
    venv = tmp_path / "venv"
    proc = subprocess.run(["bash", str(ROOT / "vagrant" / "provision.sh"), str(ROOT), str(venv)],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "IOLENS_EXTRAS": "test"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "can trace" in proc.stdout
    assert (venv / "bin" / "iolens").exists()


def test_vagrantfile_validates():
    if shutil.which("vagrant") is None:
        if os.environ.get("IOLENS_REQUIRE_BPF") == "1":  # CI installs it (.ci/setup.sh)
            pytest.fail("vagrant is not installed")
        pytest.skip("vagrant not installed (apt install vagrant)")
    proc = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT / "vagrant",
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated successfully" in proc.stdout
