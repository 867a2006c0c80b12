-- The seed stands in for the loaded table: build it first.
-- depends_on: {{ ref('raw_payments') }}
select
    id as payment_id,
    order_id,
    method,
    amount_cents / 100.0 as amount
from {{ source('shop', 'payments') }}
