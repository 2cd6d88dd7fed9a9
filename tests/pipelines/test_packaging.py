"""Installing the product never takes the names of a user's own dlt project.

A dlt project keeps its code in `sources/` and `pipelines/`, as this repository does. Installed, the
product's are `intercom_elt.sources` and `intercom_elt.pipelines`, so in a user's project both its
own packages and ours import, and the console script works from there.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _user_project(root: Path) -> Path:
    for package in ("sources", "pipelines"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text(f"OWNER = 'the user project: {package}'\n")
    return root


def test_beside_a_dlt_project_with_its_own_sources_and_pipelines(tmp_path: Path) -> None:
    project = _user_project(tmp_path / "my_dlt_project")
    code = (
        "import sources, pipelines\n"
        "from intercom_elt.pipelines.cli import build_parser\n"
        "from intercom_elt.sources.intercom import intercom_source\n"
        "print(sources.OWNER); print(pipelines.OWNER); print(build_parser().prog, intercom_source.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "the user project: sources", "the user project: pipelines", "intercom-sync intercom_source",
    ]
    script = Path(sys.executable).with_name("intercom-sync")
    helped = subprocess.run([str(script), "--help"], cwd=project, capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: intercom-sync")


def test_the_wheel_claims_only_names_of_its_own(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("intercom_elt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"intercom_elt", "intercom_emulator"}
    assert "intercom_elt/sources/intercom/specs.py" in names
    assert "intercom_elt/pipelines/report/template.html" in names
