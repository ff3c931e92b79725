"""IoT jobs, the customer side (HTTP only: parse, authorize, call the service, shape); docs/jobs.md."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import Offset, StrId
from pulse.serve.schemas.jobs import JobCancel, JobCanceled, JobCreate, JobCreated, JobDetail, JobSummary
from pulse.services import jobs as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/jobs", tags=["jobs"])
READ = customer("jobs.read")
WRITE = customer("jobs.write")


@router.post("", status_code=201, response_model=JobCreated)
async def create_job(body: JobCreate, p: Principal = Depends(WRITE),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Exactly one target: a device, a (static or dynamic) group's current members, or every ACTIVE device.
    One QUEUED execution per device; each is notified on `…/jobs/notify` at once."""
    return await service.create(svc, p.tenant_id, body.fields(), body.expires_in_s, p.sub)


@router.get("", response_model=list[JobSummary])
async def list_jobs(status: str | None = Query(None, description="a job status; any other value matches none"),
                    limit: int = Query(50, ge=1, le=200), offset: Offset = 0, p: Principal = Depends(READ),
                    svc: ServiceContext = Depends(services)) -> list[dict[str, Any]]:
    """Newest first; a bare array, as documented."""
    return await service.list_jobs(svc, p.tenant_id, status, limit, offset)


@router.get("/{job_id}", response_model=JobDetail)
async def get_job(job_id: StrId, p: Principal = Depends(READ),
                  svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """The job and its executions by device id."""
    return await service.get(svc, p.tenant_id, job_id)


@router.delete("/{job_id}", response_model=JobCanceled)
async def cancel_job(job_id: StrId, body: JobCancel | None = Body(None), p: Principal = Depends(WRITE),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Cancels a job IN_PROGRESS (400 otherwise): QUEUED executions are REJECTED, IN_PROGRESS ones may finish."""
    return await service.cancel(svc, p.tenant_id, job_id, body.reason if body else None)
