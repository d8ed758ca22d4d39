"""A cluster node's gateway gets the node's TLS files and the setting that names them."""

import stat

import pytest

from gateway.settings import cluster_tls_files, settings_from_env
from provisioner.host import cluster_ca, specs
from provisioner.host.errors import InvalidArgument


def test_the_gateway_gets_the_nodes_certificate_and_never_the_cas_key(tmp_path):
    home = tmp_path / "home"
    cluster_ca.create_ca(home)
    cluster_ca.install(home, cluster_ca.issue(home, "node-1"))
    copy = cluster_ca.install_for_gateway(home, home / "gateway")
    assert sorted(path.name for path in copy.iterdir()) == ["ca.crt", "node.crt", "node.key"]
    for name in ("ca.crt", "node.crt", "node.key"):
        assert (copy / name).read_bytes() == (home / "cluster" / name).read_bytes()
    assert stat.S_IMODE((copy / "node.key").stat().st_mode) == 0o600
    assert (home / "cluster" / "ca.key").exists()


def test_a_host_outside_a_cluster_is_told_how_to_join(tmp_path):
    with pytest.raises(InvalidArgument, match="cluster init.*cluster join"):
        cluster_ca.install_for_gateway(tmp_path / "home", tmp_path / "home" / "gateway")


def test_the_gateway_reads_the_files_where_the_provisioner_puts_them():
    settings = settings_from_env(specs.gateway_cluster_environment())
    ca, cert, key = cluster_tls_files(settings)
    assert (ca, cert, key) == tuple(
        f"{specs.GATEWAY_CONFIG_DIR}/cluster/{name}" for name in cluster_ca.GATEWAY_FILES
    )
