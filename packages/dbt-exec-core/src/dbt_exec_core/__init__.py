"""dbt-exec-core."""
