"""This scale-set instance's public address, from the Instance Metadata Service's load balancer metadata.

`python -m recorder_vm.deploy.instance_endpoints` prints JSON `{"privateIp", "publicIp", "inboundRules"}`;
install.ps1 runs it and hands `publicIp` to the media platform (RECORDER_MEDIA_PUBLIC_IP).

Why not `instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress`: it is empty when the VM is in a
Standard load balancer's backend pool with a Standard public IP per instance (MicrosoftDocs/azure-docs
issues 44314 and 58263; microsoft/azureimds issue 25). The load balancer metadata endpoint
(`/metadata/loadbalancer?api-version=2020-10-01`, https://learn.microsoft.com/azure/load-balancer/
howto-load-balancer-imds) lists, for each private IP of the instance, "the instance level Public or
Private IP" (`publicIpAddresses`) and the load balancer's inbound rules and NAT rules towards it
(`inboundRules`: the load balancer's frontend IP and port, the backend port). It answers 404 until the
instance is in the backend pool ("retry later", troubleshoot-load-balancer-imds), so it is polled.

The media platform pairs this instance-level IP (media, UDP, straight to the VM) with the public port of
the media-control NAT rule, reached through RECORDER_FQDN, which points at the load balancer: the
media configuration blob advertises net.tcp://<ServiceFqdn>:<InstancePublicPort>, as in Microsoft's
policy recording sample (instance IP from the instance's own public IP, public port from its
instance input endpoint on the load-balanced address).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

IMDS = "http://169.254.169.254/metadata"
LOAD_BALANCER_PATH = "/loadbalancer?api-version=2020-10-01"
PRIVATE_IP_PATH = "/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text"


class EndpointsUnavailable(Exception):
    """The metadata does not (yet) say what this instance's public address is."""


Fetch = Callable[[str], tuple[int, bytes]]


def fetch(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET an IMDS URL: `Metadata: true`, never through a proxy (IMDS refuses proxied requests)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    # The base is IMDS's fixed link-local http URL (a loopback server in tests), never user input.
    request = urllib.request.Request(url, headers={"Metadata": "true"})  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def public_ip_for(metadata: dict[str, Any], private_ip: str) -> str:
    """The instance-level public IP of `private_ip` in the load balancer metadata."""
    addresses = metadata.get("loadbalancer", {}).get("publicIpAddresses") or []
    for entry in addresses:
        if entry.get("privateIpAddress") == private_ip and entry.get("frontendIpAddress"):
            address = str(entry["frontendIpAddress"])
            ipaddress.ip_address(address)  # a malformed answer fails here, not in the media platform
            return address
    raise EndpointsUnavailable(f"no instance-level public IP for {private_ip} in the load balancer metadata")


def inbound_rules_for(metadata: dict[str, Any], private_ip: str) -> list[dict[str, Any]]:
    """The load balancer's inbound (and NAT) rules towards `private_ip`: frontend IP and port, backend port."""
    rules = metadata.get("loadbalancer", {}).get("inboundRules") or []
    return [
        {
            "protocol": str(rule.get("protocol", "")).lower(),
            "frontendIpAddress": rule.get("frontendIpAddress"),
            "frontendPort": rule.get("frontendPort"),
            "backendPort": rule.get("backendPort"),
        }
        for rule in rules
        if rule.get("privateIpAddress") == private_ip
    ]


def discover(
    get: Fetch = fetch,
    *,
    base: str = IMDS,
    attempts: int = 30,
    wait: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """This instance's private IP, public IP and inbound rules; retries while the metadata is not there."""
    status, body = get(base + PRIVATE_IP_PATH)
    if status != 200 or not body.strip():
        raise EndpointsUnavailable(f"IMDS gave no private IP (HTTP {status})")
    private_ip = body.decode().strip()
    problem = "no answer"
    for attempt in range(attempts):
        if attempt:
            sleep(wait)
        status, body = get(base + LOAD_BALANCER_PATH)
        if status in (404, 429, 500, 503):
            problem = f"HTTP {status}"
            continue
        if status != 200:
            raise EndpointsUnavailable(f"IMDS load balancer metadata: HTTP {status}")
        metadata = json.loads(body)
        try:
            return {
                "privateIp": private_ip,
                "publicIp": public_ip_for(metadata, private_ip),
                "inboundRules": inbound_rules_for(metadata, private_ip),
            }
        except EndpointsUnavailable as error:
            problem = str(error)
    raise EndpointsUnavailable(f"load balancer metadata not available after {attempts} attempts ({problem})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recorder_vm.deploy.instance_endpoints")
    parser.add_argument("--attempts", type=int, default=30)
    parser.add_argument("--wait", type=float, default=10.0)
    parser.add_argument("--imds", default=IMDS, help=argparse.SUPPRESS)  # tests only
    args = parser.parse_args(argv)
    try:
        endpoints = discover(base=args.imds, attempts=args.attempts, wait=args.wait)
    except EndpointsUnavailable as error:
        print(f"instance endpoints: {error}", file=sys.stderr)
        return 1
    print(json.dumps(endpoints))
    return 0


if __name__ == "__main__":
    sys.exit(main())
