"""intercom-elt, as installed: the dlt source and the faces under one name of their own.

Why a parent package: the repository keeps dlt's usual folders, `sources/` and `pipelines/`, but
installing them under those bare names would take the names every dlt project uses for its own
folders. Installed, they are `intercom_elt.sources` and `intercom_elt.pipelines` (see
`[tool.setuptools.package-dir]` in pyproject.toml), so the product sits beside a user's own dlt
project, `sources/` and `pipelines/` included (tests/pipelines/test_packaging.py).
"""
