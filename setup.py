"""The optional compiled UDP loop (gslb/shell/_udploop.c); everything else is in pyproject.toml.

`optional=True`: without a C compiler the installation goes on, and the UDP threads run
their Python loop (gslb.shell.transport)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gslb.shell._udploop",
            ["gslb/shell/_udploop.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
