"""Regenerate ``test/golden/replay_vtest.json`` ON PURPOSE (a deliberate change of model, config, detector or
tracker): ``python test/regen_golden.py`` from the repository root, in the project shell (``. scripts/env.sh``).
It runs the very replay ``test_bag_replay.py`` checks, writes what the pipeline produced, and prints how it
differs from the previous golden file so the change can be reviewed before it is committed."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bag_replay import FRAMES, GOLDEN, compare, run_replay, write_golden


def main() -> int:
    previous = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else None
    with tempfile.TemporaryDirectory(prefix="ev_golden_") as work:
        run = run_replay(Path(work))
    if run.bag_frames != FRAMES or len(run.results["mcap"]["frames"]) != FRAMES:
        print(f"refusing to write: {len(run.results['mcap']['frames'])} of {run.bag_frames} frames came back")
        return 1
    path = write_golden(run)
    if previous is not None:
        changes = compare(run.results["mcap"], previous["results"])
        print(f"{len(changes)} difference(s) from the previous golden file" + (":" if changes else ""))
        for line in changes[:40]:
            print(f"  {line}")
    print(f"wrote {path}: {FRAMES} frames, {len(run.results['mcap']['events'])} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
