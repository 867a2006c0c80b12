{{ config(materialized="incremental", unique_key="payment_id") }}

-- Incremental: later runs only add payments newer than the newest one already loaded.
select
    p.payment_id,
    p.order_id,
    o.customer_id,
    p.method,
    p.amount,
    o.ordered_at
from {{ ref('stg_payments') }} as p
join {{ ref('stg_orders') }} as o using (order_id)
{% if is_incremental() %}
where p.payment_id > (select coalesce(max(payment_id), 0) from {{ this }})
{% endif %}
