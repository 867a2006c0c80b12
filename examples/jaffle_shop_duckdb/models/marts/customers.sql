select
    c.customer_id,
    c.first_name || ' ' || c.last_name as full_name,
    c.country,
    c.signed_up_on,
    count(o.order_id) as order_count,
    min(o.ordered_at) as first_ordered_at,
    coalesce(sum(o.amount) filter (where o.status <> 'returned'), 0) as lifetime_value
from {{ ref('stg_customers') }} as c
left join {{ ref('orders') }} as o using (customer_id)
group by all
