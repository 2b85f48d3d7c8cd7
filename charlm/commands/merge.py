"""charlm merge: merge bench JSONs (shards of one sweep, or sweeps of several clusters) into
one. Refuses files of different commits, devices, torch versions or thread settings unless
--allow-mixed; drops duplicate benchmarks (the first file's kept); lists the grid's
workloads that no file timed."""

from __future__ import annotations

from pathlib import Path

from charlm.commands.common import add_force_arg, writes_out

EXAMPLE = """example:
  charlm merge runs/sweep/a/merged.json runs/sweep/b/merged.json --out runs/merged.json"""


def register(subparsers):
    p = subparsers.add_parser("merge", help="merge bench JSONs (shards, clusters) into one",
                              description=__doc__, epilog=EXAMPLE)
    p.add_argument("files", type=Path, nargs="+", metavar="JSON", help="bench JSONs to merge")
    p.add_argument("--out", type=Path, required=True, help="the merged JSON to write")
    add_force_arg(p)
    p.add_argument("--allow-mixed", action="store_true",
                   help="merge files of different commits, devices, torch versions or threads")
    p.set_defaults(func=run)


@writes_out("file")
def run(args) -> int:
    from analysis.merge import merge_files

    merged = merge_files(args.files, args.out, allow_mixed=args.allow_mixed)
    for s in merged.sources:
        shard = f"shard {s['shard']}/{s['of']}" if s["shard"] else "unsharded"
        print(f"{s['file']}: {s['timed']} timed ({shard}, {s['status'] or 'no status'}, "
              f"node {s['node']}, commit {s['commit']}, {s['devices']}, torch {s['torch']}, "
              f"{s['threads']} threads)")
    grid = len(merged.data["charlm"]["grid_workloads"])
    print(f"merged {merged.timed} of {grid} benchmarks ({merged.duplicates} duplicates "
          f"dropped) -> {args.out}")
    if merged.missing:
        print(f"missing {len(merged.missing)}: {', '.join(merged.missing)}")
    return 0
