"""dbt-cachekeys."""
