-- Each platform service its own broker account (issue 18, docs/devices.md "Broker isolation"):
-- alerts and releases no longer share the api account's secret; each username is bound to
-- one client id by the broker's dynamic security (devices/dynsec.py).
ALTER TABLE service_accounts DROP CONSTRAINT IF EXISTS service_accounts_name_check;
ALTER TABLE service_accounts ADD CONSTRAINT service_accounts_name_check
    CHECK (name IN ('ingest', 'alerts', 'releases', 'api'));
