DROP TABLE partner_clients, credentials;
