"""The native scanner (exporter/_scan.c) and the tailer's reader (exporter/tail/_read.c) as
optional C extensions: everything else about the package is declared in pyproject.toml.
``optional=True``: where they cannot be compiled (no C compiler), the install still succeeds,
the decoder uses its exact Python path and the tailer reads with ``os.preadv``."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "exporter._scan",
            ["exporter/_scan.c"],
            depends=["exporter/_scan_lex.h"],
            extra_compile_args=["-fno-strict-aliasing"],
            optional=True,
        ),
        Extension("exporter.tail._read", ["exporter/tail/_read.c"], optional=True),
    ]
)
