DROP TABLE products, users, stock, payment_refunds, payments, order_history, order_lines, orders;
