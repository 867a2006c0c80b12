-- Ephemeral: inlined into the models that use it, never built on its own.
select
    order_id,
    sum(amount) as paid_amount,
    count(*) as payment_count
from {{ ref('stg_payments') }}
group by order_id
