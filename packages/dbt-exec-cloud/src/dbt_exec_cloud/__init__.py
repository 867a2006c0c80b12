"""dbt-exec-cloud."""
