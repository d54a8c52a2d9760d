ALTER TABLE credentials DROP COLUMN status_changed_at, DROP COLUMN status;
DROP TABLE user_status;
DROP TABLE user_devices;
DROP TABLE user_addresses;
DROP TABLE user_preferences;
