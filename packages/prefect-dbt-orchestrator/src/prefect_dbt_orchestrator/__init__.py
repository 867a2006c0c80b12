"""prefect-dbt-orchestrator."""
