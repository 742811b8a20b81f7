"""Where a run sits in a Slurm job, for its log header (and the run registry): `lrtop attach slurm:JOBID` finds the
node of rank 0 and the run by these. Read from the environment Slurm gives every task; nothing is asked of Slurm."""
from __future__ import annotations

import os
import socket
from typing import Optional


def slurm_job(environ=os.environ) -> Optional[dict]:
    """`{"job_id": "123", "proc_id": 0, "node": "gpu7"}` under Slurm (SLURM_JOB_ID, SLURM_PROCID, SLURMD_NODENAME or
    the short hostname), else None."""
    job = environ.get("SLURM_JOB_ID") or environ.get("SLURM_JOBID")
    if not job:
        return None
    try:
        proc = int(environ.get("SLURM_PROCID", "0"))
    except ValueError:
        proc = 0
    node = environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
    return {"job_id": job, "proc_id": proc, "node": node}
