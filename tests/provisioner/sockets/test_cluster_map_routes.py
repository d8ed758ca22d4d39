"""A node given the cluster's map routes the facilities it puts on this node that have no route
here yet (one a manager just created), from their state files and real sockets."""

from medcell_common.interfaces import RouteState
from provisioner.host import routes, state_file
from provisioner.host.state_file import FacilityState
from tests.provisioner.sockets.fakes import FakeFacility

HERE, THERE = "10.0.0.3", "10.0.0.1"


def test_a_new_facility_here_is_routed_by_what_its_socket_says(config):
    app = FakeFacility(config, "fresh")
    app.boot()
    try:
        state_file.save(config, "fresh", FacilityState())  # what the node API's prepare wrote
        state_file.save(config, "dozing", FacilityState(asleep=True))
        state_file.save(config, "silent", FacilityState())  # should run; nothing answers
        facilities = {
            slug: {"node": "node3", "address": HERE} for slug in ("fresh", "dozing", "silent")
        }
        facilities["unmade"] = {"node": "node3", "address": HERE}  # no state file here yet
        facilities["away"] = {"node": "node1", "address": THERE}
        routes.set_cluster_map(config, "node3", 7, facilities)
    finally:
        app.halt()
    table = routes.read_routes(config)["facilities"]
    assert table == {
        "fresh": {"state": RouteState.RUNNING},
        "dozing": {"state": RouteState.ASLEEP},
        "silent": {"state": RouteState.ASLEEP},
        "away": {"state": RouteState.REMOTE, "node": "node1", "address": THERE},
    }


def test_a_route_this_node_already_has_is_kept(config):
    state_file.save(config, "held", FacilityState())
    routes.set_route(config, "held", RouteState.STOPPED)
    routes.set_cluster_map(config, "node3", 8, {"held": {"node": "node3", "address": HERE}})
    assert routes.read_routes(config)["facilities"] == {"held": {"state": RouteState.STOPPED}}
