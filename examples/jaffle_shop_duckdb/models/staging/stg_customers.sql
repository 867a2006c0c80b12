select
    id as customer_id,
    first_name,
    last_name,
    country,
    cast(signed_up_at as date) as signed_up_on
from {{ ref('raw_customers') }}
