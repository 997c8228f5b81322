-- platform_common: the shared enums and helper functions of the platform
-- (DESIGN §1). Each object is created only when missing, so a database that
-- the platform's own migrations built is left exactly as it was.
CREATE SCHEMA IF NOT EXISTS platform_common;

DO $neo$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = 'platform_common' AND t.typname = 'event_status') THEN
        CREATE TYPE platform_common.event_status AS ENUM (
            'pending', 'processing', 'completed', 'failed', 'retrying', 'cancelled', 'paused', 'blocked');
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = 'platform_common' AND t.typname = 'event_priority') THEN
        CREATE TYPE platform_common.event_priority AS ENUM (
            'low', 'normal', 'high', 'very_high', 'critical');
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = 'platform_common' AND t.typname = 'action_type') THEN
        CREATE TYPE platform_common.action_type AS ENUM (
            'email', 'sms', 'push_notification', 'webhook', 'system_notification',
            'slack_notification', 'teams_notification', 'function_execution', 'script_execution',
            'workflow_trigger', 'lambda_function', 'background_job', 'database_operation',
            'file_operation', 'storage_operation', 'backup_operation', 'data_sync',
            'cache_invalidation', 'cache_warming', 'index_rebuild', 'external_api',
            'payment_processing', 'analytics_tracking', 'crm_sync', 'erp_sync', 'security_scan',
            'compliance_check', 'audit_log', 'access_review', 'deployment_trigger',
            'scaling_operation', 'monitoring_alert', 'health_check', 'report_generation',
            'batch_processing', 'data_pipeline', 'custom');
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = 'platform_common' AND t.typname = 'action_status') THEN
        CREATE TYPE platform_common.action_status AS ENUM (
            'pending', 'running', 'completed', 'failed', 'retrying', 'cancelled', 'timeout',
            'skipped', 'paused', 'blocked');
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'platform_common' AND p.proname = 'uuid_generate_v7') THEN
        -- A v4 uuid with its first 48 bits replaced by the Unix time in
        -- milliseconds and its version nibble turned from 4 into 7 (RFC 9562).
        CREATE FUNCTION platform_common.uuid_generate_v7() RETURNS uuid
        LANGUAGE sql VOLATILE PARALLEL SAFE AS $fn$
            SELECT encode(
                set_bit(set_bit(
                    overlay(uuid_send(gen_random_uuid())
                            PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                            FROM 1 FOR 6),
                    52, 1), 53, 1),
                'hex')::uuid
        $fn$;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'platform_common' AND p.proname = 'update_updated_at_column') THEN
        CREATE FUNCTION platform_common.update_updated_at_column() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        BEGIN
            NEW.updated_at = now();
            RETURN NEW;
        END
        $fn$;
    END IF;
END
$neo$;
