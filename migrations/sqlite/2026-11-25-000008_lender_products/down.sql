DROP TABLE lender_products;
