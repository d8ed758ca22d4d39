"""The facility's own seccomp profile: what it allows, and which containers get it.

That a real facility container runs under it (and is refused what it leaves out) is tested with
Docker in test_docker_facilities.py.
"""

import json
import socket

import pytest

from provisioner.host import specs
from provisioner.host.docker_backend import _create_kwargs
from provisioner.host.seccomp import ENOSYS, facility_profile, names

# What a compromised facility would want and never needs: other processes, namespaces and
# mounts, kernel keys and modules, eBPF, performance counters, io_uring, changing its identity.
NEVER = """ptrace process_vm_readv process_vm_writev mount umount2 pivot_root chroot unshare setns
keyctl add_key request_key bpf perf_event_open userfaultfd io_uring_setup io_uring_enter
personality init_module finit_module delete_module kexec_load reboot swapon setuid setgid setreuid
setresuid setgroups setsid setpriority sched_setscheduler sysfs acct lookup_dcookie
name_to_handle_at open_by_handle_at fanotify_init memfd_create socket""".split()


def test_the_profile_allows_only_its_list_and_only_this_architecture():
    profile = json.loads(facility_profile("x86_64"))
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["architectures"] == ["SCMP_ARCH_X86_64"]  # no 32-bit entry point
    allowed, clone3, sockets = profile["syscalls"]
    assert allowed == {"names": names(), "action": "SCMP_ACT_ALLOW"}
    # "not implemented": the C library then starts threads with clone, which is allowed
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}
    assert {"read", "openat", "futex", "clone", "execve", "accept4", "fdatasync"} <= set(names())
    assert json.loads(facility_profile("aarch64"))["architectures"] == ["SCMP_ARCH_AARCH64"]


@pytest.mark.parametrize("name", NEVER)
def test_the_profile_leaves_out_what_a_facility_never_needs(name):
    assert name not in names()


def test_sockets_only_of_the_unix_family():
    profile = json.loads(facility_profile("x86_64"))
    rule = profile["syscalls"][2]
    assert rule["names"] == ["socket"] and rule["action"] == "SCMP_ACT_ALLOW"
    assert rule["args"] == [{"index": 0, "value": socket.AF_UNIX, "op": "SCMP_CMP_EQ"}]


def test_an_unknown_architecture_keeps_dockers_default():
    assert facility_profile("riscv64") == ""


def facility_image_specs(config):
    facility = config.facility("alpha")
    labels = {"medcell.name": "Alpha", "medcell.retention": "7d"}
    return {
        "server": specs.facility_spec(config, facility, "Alpha", "7d"),
        "shred": specs.shred_spec(config, "alpha"),
        "command": specs.offline_spec(config, "alpha", "wipe"),
        "backup": specs.backup_spec(config, "alpha", labels, "/staging", "b1"),
        "restore": specs.restore_spec(config, "alpha", labels, "/staging"),
    }


def test_every_container_of_the_facility_image_gets_it_and_nothing_else_does(config):
    for role, spec in facility_image_specs(config).items():
        assert spec.image == config.facility_image
        options = _create_kwargs(spec)["security_opt"]
        assert options == ["no-new-privileges:true", f"seccomp={facility_profile()}"], role
    gateway = specs.gateway_spec(config, "10001:10001", None)
    assert _create_kwargs(gateway)["security_opt"] == ["no-new-privileges:true"]
    # kept out of the spec's repr (error messages, logs): it is long
    assert "SCMP" not in repr(facility_image_specs(config)["server"])


def test_a_new_profile_changes_the_fingerprint_so_up_recreates_the_facility(config, monkeypatch):
    facility = config.facility("alpha")
    before = specs.facility_spec(config, facility, "Alpha", "7d").labels["medcell.config"]
    assert specs.facility_spec(config, facility, "Alpha", "7d").labels["medcell.config"] == before
    monkeypatch.setattr(specs, "FACILITY_SECCOMP", facility_profile().replace('"tkill",', ""))
    assert specs.facility_spec(config, facility, "Alpha", "7d").labels["medcell.config"] != before
