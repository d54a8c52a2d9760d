DROP TABLE payment_customers;
