select
    o.order_id,
    o.customer_id,
    o.ordered_at,
    o.status,
    o.amount,
    coalesce(p.paid_amount, 0) as paid_amount,
    coalesce(p.payment_count, 0) as payment_count,
    coalesce(p.paid_amount, 0) >= o.amount as is_paid
from {{ ref('stg_orders') }} as o
left join {{ ref('int_order_payments') }} as p using (order_id)
