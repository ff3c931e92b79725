"""Tenant SQL: a read-only DuckDB query over the caller's own telemetry and device registry."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.schemas.analytics_sql import SqlQuery, SqlResult
from pulse.services import tenant_sql as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/analytics", tags=["analytics"])


@router.post("/sql", response_model=SqlResult)
async def run_sql(body: SqlQuery, p: Principal = Depends(customer("analytics.sql")),
                  svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """One SELECT over `telemetry` and `devices`; other statements, file or network access are refused (400)."""
    result = await service.run(svc, p.tenant_id, body.sql, body.limit)
    return {"columns": [{"name": n, "type": t} for n, t in result.columns], "rows": result.rows,
            "row_count": len(result.rows), "truncated": result.truncated, "elapsed_ms": result.elapsed_ms}
