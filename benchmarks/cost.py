"""Cost per recorded hour and per policy user per month, in Azure, from measured resource use and a dated
price sheet (benchmarks/azure_prices.json). Every input is printed with where it comes from: measured here
(a benchmark of this repository, with its figure), documented (Microsoft's documentation), or an assumption
of the model. docs/cost.md explains the model.

    .venv/bin/python benchmarks/cost.py [--capture-core-per-call 0.0028] [--hours-per-user 30] [--prices FILE]

Prices marked "assumption" in the sheet were not sourced on the day it was compiled: replace them with the
pricing pages' values (a corrected copy with --prices) before quoting a figure.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES = Path(__file__).resolve().parent / "azure_prices.json"
HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class Inputs:
    # --- measured in this repository (benchmarks/README.md) ---
    capture_core_per_call: float  # recorder_capacity.py: CPU of our capture pipeline per concurrent call
    evidence_mb_per_hour: float  # recorder_capacity.py: FLAC of speech with conversational pauses
    access_mb_per_hour: float  # lifecycle.py: Opus access copy, 16 kbit/s
    access_copy_cpu_s_per_hour: float  # lifecycle.py: 1,681 ms per 120-s recording
    finalise_cpu_s_per_hour: float  # lifecycle.py: 98 ms per 120-s recording
    seal_verify_cpu_s_per_recording: float  # lifecycle.py: seal 61 ms + verify 50 ms
    ingest_cpu_ms_per_record: float  # ingest.py: call-record functions end to end
    reconcile_cpu_ms_per_version: float  # ingest.py --full-app: whole app minus the call-record functions
    block_seconds: float  # the recorder's staged block (1.44 s: 20 FLAC frames of 1,152 samples)
    # --- documented by Microsoft ---
    vm_vcpus: int  # Standard_D4s_v5, the default recorder size
    # --- assumptions of the model ---
    media_vcpu_per_call: float  # Microsoft's media library per audio call (Microsoft publishes none for audio)
    target_utilisation: float  # recorder VMs are scaled out before they reach it
    mean_call_minutes: float
    call_record_versions: float  # Graph publishes a call record, then sometimes updates it
    function_executions_per_recording: float
    function_memory_gb: float  # Flex Consumption instance memory (infra: instanceMemoryMB 2048)
    function_wall_per_cpu: float  # an execution's billed time over its CPU time (I/O waits)
    cosmos_ru_per_recording: float
    cosmos_kb_per_recording: float
    log_mb_per_recording: float
    hot_days: float  # evidenceColdAfterDays
    # The capture's copy of the audio in `captures` (hot, the account's default tier) after the seal: the clean-up
    # leaves it as a previous version, deleted by the `capture-versions-after-seal` rule captureVersionsDeleteAfterDays
    # (7) after it was written, then soft-deleted for deleteRetentionPolicy's 30 days, plus a day for the rule's run.
    capture_days: float
    hours_per_user_month: float
    peak_concurrency: float  # share of policy users on a recorded call in the busiest hour
    busy_hours_per_month: float  # hours a month the fleet is scaled for the peak
    min_vms: int  # the scale set's floor (two for availability)


def load_prices(path: Path) -> tuple[dict[str, float], dict[str, Any]]:
    sheet = json.loads(path.read_text())
    return {name: float(item["price"]) for name, item in sheet["prices"].items()}, sheet


@dataclass(frozen=True)
class PerHour:
    """The cost of one recorded hour, by component (USD)."""

    vm: float
    functions: float
    cosmos: float
    logs: float
    storage: float
    storage_gb_months: float

    @property
    def total(self) -> float:
        return self.vm + self.functions + self.cosmos + self.logs + self.storage


def vcpu_per_call(i: Inputs) -> float:
    return i.capture_core_per_call + i.media_vcpu_per_call


def calls_per_vm(i: Inputs) -> int:
    return max(1, math.floor(i.vm_vcpus * i.target_utilisation / vcpu_per_call(i)))


def per_recorded_hour(i: Inputs, p: dict[str, float], retention_years: float) -> PerHour:
    recordings = 60.0 / i.mean_call_minutes
    vm_hour = p["vm_d4s_v5_windows_hour"] + p["public_ipv4_hour"]
    vm = vm_hour / calls_per_vm(i)  # a busy VM's hour shared by the calls it holds
    cpu_seconds = (
        i.access_copy_cpu_s_per_hour
        + i.finalise_cpu_s_per_hour
        + recordings * i.seal_verify_cpu_s_per_recording
        + recordings * i.call_record_versions * (i.ingest_cpu_ms_per_record + i.reconcile_cpu_ms_per_version) / 1000
    )
    gb_seconds = cpu_seconds * i.function_wall_per_cpu * i.function_memory_gb
    functions = (
        gb_seconds * p["functions_flex_gb_second"]
        + recordings * i.function_executions_per_recording * p["functions_flex_million_executions"] / 1e6
    )
    months = retention_years * 12
    cosmos = recordings * (
        i.cosmos_ru_per_recording * p["cosmos_serverless_million_ru"] / 1e6
        + i.cosmos_kb_per_recording / 1e6 * months * p["cosmos_storage_gb_month"]
    )
    logs = recordings * i.log_mb_per_recording / 1000 * p["log_analytics_gb"]
    evidence_gb, access_gb = i.evidence_mb_per_hour / 1000, i.access_mb_per_hour / 1000
    hot_months = min(months, i.hot_days / DAYS_PER_MONTH)
    cold_months = months - hot_months
    capture_months = i.capture_days / DAYS_PER_MONTH
    storage_gb_months = (evidence_gb + access_gb) * months + evidence_gb * capture_months
    writes = 3600 / i.block_seconds + 4 * recordings  # staged blocks; block list, manifest, copy, seal per recording
    storage = (
        evidence_gb * (hot_months * p["blob_hot_grs_gb_month"] + cold_months * p["blob_cold_grs_gb_month"])
        + access_gb * months * p["blob_cool_grs_gb_month"]
        + evidence_gb * capture_months * p["blob_hot_grs_gb_month"]
        + writes * p["blob_hot_write_10k"] / 1e4
        + recordings * p["blob_tier_change_cold_10k"] / 1e4
    )
    return PerHour(vm, functions, cosmos, logs, storage, storage_gb_months)


@dataclass(frozen=True)
class Fleet:
    users: int
    peak_calls: int
    busy_vms: int
    monthly_vm: float
    monthly_usage: float  # functions, cosmos, logs, storage at steady state (retention's worth stored)

    @property
    def monthly(self) -> float:
        return self.monthly_vm + self.monthly_usage


def fleet(i: Inputs, p: dict[str, float], users: int, retention_years: float) -> Fleet:
    """A month of a tenant with `users` policy users, once `retention_years` of recordings are stored."""
    peak_calls = math.ceil(users * i.peak_concurrency)
    busy_vms = max(i.min_vms, math.ceil(peak_calls / calls_per_vm(i)) + 1)  # one spare for failures and drains
    vm_hour = p["vm_d4s_v5_windows_hour"] + p["public_ipv4_hour"]
    vm_hours = busy_vms * i.busy_hours_per_month + i.min_vms * (HOURS_PER_MONTH - i.busy_hours_per_month)
    monthly_vm = vm_hours * vm_hour + p["load_balancer_standard_month"]
    hour = per_recorded_hour(i, p, retention_years)
    usage_per_hour = hour.functions + hour.cosmos + hour.logs + hour.storage
    monthly_usage = users * i.hours_per_user_month * usage_per_hour
    return Fleet(users, peak_calls, busy_vms, monthly_vm, monthly_usage)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prices", type=Path, default=PRICES)
    parser.add_argument("--capture-core-per-call", type=float, default=0.0028, help="measured: recorder_capacity.py")
    parser.add_argument("--reconcile-cpu-ms", type=float, default=7.9, help="measured: ingest.py --full-app")
    parser.add_argument("--media-vcpu-per-call", type=float, default=0.02, help="assumption: media library per call")
    parser.add_argument("--hours-per-user", type=float, default=30.0, help="assumption: recorded hours a month")
    parser.add_argument("--peak-concurrency", type=float, default=0.3, help="assumption: users on a call at peak")
    parser.add_argument("--mean-call-minutes", type=float, default=8.0, help="assumption")
    args = parser.parse_args()
    prices, sheet = load_prices(args.prices)
    i = Inputs(
        capture_core_per_call=args.capture_core_per_call,
        evidence_mb_per_hour=59.4,
        access_mb_per_hour=6.5,
        access_copy_cpu_s_per_hour=1.681 * 30,
        finalise_cpu_s_per_hour=0.098 * 30,
        seal_verify_cpu_s_per_recording=0.061 + 0.050,
        ingest_cpu_ms_per_record=16.9,
        reconcile_cpu_ms_per_version=args.reconcile_cpu_ms,
        block_seconds=1.44,
        vm_vcpus=4,
        media_vcpu_per_call=args.media_vcpu_per_call,
        target_utilisation=0.6,
        mean_call_minutes=args.mean_call_minutes,
        call_record_versions=1.5,
        function_executions_per_recording=20,
        function_memory_gb=2.0,
        function_wall_per_cpu=2.0,
        cosmos_ru_per_recording=150,
        cosmos_kb_per_recording=12,
        log_mb_per_recording=0.5,
        hot_days=30,
        capture_days=7 + 30 + 1,
        hours_per_user_month=args.hours_per_user,
        peak_concurrency=args.peak_concurrency,
        busy_hours_per_month=10 * 21.7,
        min_vms=2,
    )
    print(f"Verbatim: cost per recorded hour in Azure ({sheet['region']}; price sheet compiled {sheet['compiled']})")
    print()
    print("Inputs")
    print(f"  measured  capture pipeline CPU per concurrent call: {i.capture_core_per_call:.4f} vCPU "
          "(benchmarks/recorder_capacity.py, median at the largest concurrency)")  # fmt: skip
    print(f"  measured  evidence {i.evidence_mb_per_hour} MB and access copy {i.access_mb_per_hour} MB per recorded "
          "hour (recorder_capacity.py, lifecycle.py)")  # fmt: skip
    print(f"  measured  access copy {i.access_copy_cpu_s_per_hour:.1f} s, finalise {i.finalise_cpu_s_per_hour:.1f} s "
          f"of CPU per recorded hour; seal + verify {i.seal_verify_cpu_s_per_recording * 1000:.0f} ms per recording "
          "(lifecycle.py)")  # fmt: skip
    print(f"  measured  ingestion {i.ingest_cpu_ms_per_record} ms, reconciliation {i.reconcile_cpu_ms_per_version} ms "
          "of CPU per call-record version (ingest.py)")  # fmt: skip
    print(f"  measured  a staged block every {i.block_seconds} s (2,500 block writes per recorded hour)")
    print(f"  documented recorder VM Standard_D4s_v5: {i.vm_vcpus} vCPU (infra default); Microsoft: media bots need "
          ">= 2 cores, video 1-2 sessions per core; nothing published for audio-only calls")  # fmt: skip
    print(f"  assumption media library per audio call: {i.media_vcpu_per_call} vCPU ({1 / i.media_vcpu_per_call:.0f} "
          "calls per vCPU; community reports 200-400 audio calls per VM)")  # fmt: skip
    print(f"  assumption VMs scaled out at {i.target_utilisation:.0%} CPU -> {calls_per_vm(i)} calls per recorder VM; "
          f"at least {i.min_vms} VMs, one spare at peak")  # fmt: skip
    print(f"  assumption mean call {i.mean_call_minutes} min; {i.call_record_versions} call-record versions per call; "
          f"{i.function_executions_per_recording:.0f} Functions executions per recording; billed time = "
          f"{i.function_wall_per_cpu}x CPU time at {i.function_memory_gb} GB")  # fmt: skip
    print(f"  assumption Cosmos {i.cosmos_ru_per_recording:.0f} RU and {i.cosmos_kb_per_recording:.0f} KB per "
          "recording (the emulator reports a constant 1 RU per request, so RU cannot be measured locally; computed "
          "from documented costs: 1 RU per 1 KB point read, ~5-6 RU per 1 KB write, queries more)")  # fmt: skip
    print(f"  assumption logs {i.log_mb_per_recording} MB per recording; evidence hot {i.hot_days:.0f} days, then "
          "cold (infra defaults); access copies cool; GRS")  # fmt: skip
    print(f"  assumption the capture's copy of the audio stays hot {i.capture_days:.0f} days after the call "
          "(capture-versions-after-seal: 7 days a previous version, 30 soft-deleted, 1 for the run)")  # fmt: skip
    print(f"  assumption each policy user records {i.hours_per_user_month:.0f} h a month; {i.peak_concurrency:.0%} of "
          f"them on a call at the peak, {i.busy_hours_per_month:.0f} busy hours a month")  # fmt: skip
    unsourced = [name for name, item in sheet["prices"].items() if item["status"] == "assumption"]
    print(f"  prices    {len(sheet['prices']) - len(unsourced)} sourced, {len(unsourced)} assumed "
          f"(not sourced: {', '.join(unsourced)})")  # fmt: skip
    print()
    print("Cost per recorded hour (USD), a busy fleet (every VM holding its share of calls)")
    print("| retention | recorder VMs | Functions | Cosmos DB | logs | storage (GB-months) | total |")
    print("|---|---|---|---|---|---|---|")
    for years in (5, 7, 10):
        h = per_recorded_hour(i, prices, years)
        print(
            f"| {years} years | {h.vm:.4f} | {h.functions:.4f} | {h.cosmos:.4f} | {h.logs:.4f} "
            f"| {h.storage:.4f} ({h.storage_gb_months:.1f}) | {h.total:.4f} |"
        )
    print()
    print("Per policy user per month (USD), steady state (a full retention period stored), idle hours included")
    print("| policy users | peak calls | VMs at peak | retention | fleet per month | per user per month "
          "| per recorded hour |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for users in (100, 1_000, 10_000):
        for years in (5, 7, 10):
            f = fleet(i, prices, users, years)
            hours = users * i.hours_per_user_month
            print(
                f"| {users:,} | {f.peak_calls:,} | {f.busy_vms} | {years} years | {f.monthly:,.0f} "
                f"| {f.monthly / users:.2f} | {f.monthly / hours:.3f} |"
            )
    print()
    print("Reading: at small scale the two always-on recorder VMs dominate (availability, not load); from about a "
          "thousand users storage over the retention period and the VMs' share are most of the cost. Egress "
          "(replay, export) is not modelled: it is per request and small next to storage.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
