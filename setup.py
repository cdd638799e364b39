"""The native scanner (exporter/_scan.c) as an optional C extension: everything else about the
package is declared in pyproject.toml. ``optional=True``: where it cannot be compiled (no C
compiler), the install still succeeds and the decoder uses its exact Python path."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "exporter._scan",
            ["exporter/_scan.c"],
            depends=["exporter/_scan_lex.h"],
            extra_compile_args=["-fno-strict-aliasing"],
            optional=True,
        )
    ]
)
