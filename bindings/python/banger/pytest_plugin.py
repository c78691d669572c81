"""pytest plugin: `pytest -p banger.pytest_plugin`.

Fixtures:
  banger_ctx          a context (session scope) on --banger-uri (default: bangerd)
  banger_vm           a fresh VM per test, deleted afterwards even when the test fails
  banger_vm_module    one VM per test module, likewise
Options per test or module with a marker:
  @pytest.mark.banger_vm(image="debian-bookworm", nat=True, vcpu=2, memory_mib=1024)
"""
import pytest

import banger


def pytest_addoption(parser):
    group = parser.getgroup("banger")
    group.addoption("--banger-uri", default="unix:", help="libbanger context URI (default: bangerd)")
    group.addoption("--banger-image", default=None, help="image for banger_vm fixtures (default: banger's)")


def pytest_configure(config):
    config.addinivalue_line("markers", "banger_vm(**spec): the spec of the banger_vm fixture's VM "
                                       "(image, kernel, vcpu, memory_mib, disk_size, nat)")


@pytest.fixture(scope="session")
def banger_ctx(pytestconfig):
    ctx = banger.open(pytestconfig.getoption("--banger-uri"))
    yield ctx
    ctx.close()


def _spec(request):
    spec = {}
    image = request.config.getoption("--banger-image")
    if image:
        spec["image"] = image
    marker = request.node.get_closest_marker("banger_vm")
    if marker:
        spec.update(marker.kwargs)
    return spec


def _vm(ctx, request):
    vm = ctx.vms.create(ephemeral=True, **_spec(request))
    try:
        yield vm
    finally:
        try:
            vm.delete()
        except banger.NotFound:
            pass  # the test deleted it


@pytest.fixture
def banger_vm(banger_ctx, request):
    yield from _vm(banger_ctx, request)


@pytest.fixture(scope="module")
def banger_vm_module(banger_ctx, request):
    yield from _vm(banger_ctx, request)
