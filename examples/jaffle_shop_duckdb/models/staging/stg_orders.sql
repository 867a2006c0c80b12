-- The seed stands in for the loaded table: build it first.
-- depends_on: {{ ref('raw_orders') }}
select
    id as order_id,
    customer_id,
    ordered_at,
    status,
    amount_cents / 100.0 as amount
from {{ source('shop', 'orders') }}
