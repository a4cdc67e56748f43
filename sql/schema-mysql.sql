-- OMServer schema for MySQL / MariaDB (utf8mb4).
-- Generated from the Django migrations by `manage.py sqlschema`; do not edit:
-- a test fails when this file and the migrations disagree.
-- Apply with `manage.py migrate` against the database; this file is for review.
--
-- Create model ModuleDefinition
--
CREATE TABLE `modules_moduledefinition` (`id` integer UNSIGNED NOT NULL PRIMARY KEY CHECK (`id` >= 0), `name` varchar(100) NOT NULL, `caption` longtext NOT NULL, `backends` json NOT NULL, `params_schema` json NOT NULL, `enabled` bool NOT NULL, `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL);
--
-- Create model FunctionCategory
--
CREATE TABLE `inventory_functioncategory` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(100) NOT NULL UNIQUE);
--
-- Create model AppCategory
--
CREATE TABLE `inventory_appcategory` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(100) NOT NULL, `function_id` bigint NOT NULL);
--
-- Create model Server
--
CREATE TABLE `inventory_server` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `hostname` varchar(253) NOT NULL UNIQUE, `lan_ip` char(39) NOT NULL UNIQUE, `wan_ip` char(39) NULL, `os` varchar(100) NOT NULL, `ssh_port` integer UNSIGNED NOT NULL CHECK (`ssh_port` >= 0), `ssh_user` varchar(64) NOT NULL, `zone` varchar(64) NOT NULL, `enabled` bool NOT NULL, `notes` longtext NOT NULL, `app_category_id` bigint NOT NULL);
--
-- Create constraint uniq_app_category_name on model appcategory
--
ALTER TABLE `inventory_appcategory` ADD CONSTRAINT `uniq_app_category_name` UNIQUE (`function_id`, `name`);
ALTER TABLE `inventory_appcategory` ADD CONSTRAINT `inventory_appcategor_function_id_3724f53c_fk_inventory` FOREIGN KEY (`function_id`) REFERENCES `inventory_functioncategory` (`id`);
ALTER TABLE `inventory_server` ADD CONSTRAINT `inventory_server_app_category_id_f37ec3f3_fk_inventory` FOREIGN KEY (`app_category_id`) REFERENCES `inventory_appcategory` (`id`);
CREATE INDEX `inventory_server_zone_86222e67` ON `inventory_server` (`zone`);
--
-- Create model ContentType
--
CREATE TABLE `django_content_type` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(100) NOT NULL, `app_label` varchar(100) NOT NULL, `model` varchar(100) NOT NULL);
--
-- Alter unique_together for contenttype (1 constraint(s))
--
ALTER TABLE `django_content_type` ADD CONSTRAINT `django_content_type_app_label_model_76bd3d3b_uniq` UNIQUE (`app_label`, `model`);
--
-- Change Meta options on contenttype
--
-- (no-op)
--
-- Alter field name on contenttype
--
ALTER TABLE `django_content_type` MODIFY `name` varchar(100) NULL;
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
--
-- Remove field name from contenttype
--
ALTER TABLE `django_content_type` DROP COLUMN `name`;
--
-- Create model Permission
--
CREATE TABLE `auth_permission` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(50) NOT NULL, `content_type_id` integer NOT NULL, `codename` varchar(100) NOT NULL);
--
-- Create model Group
--
CREATE TABLE `auth_group` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(80) NOT NULL UNIQUE);
CREATE TABLE `auth_group_permissions` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `group_id` integer NOT NULL, `permission_id` integer NOT NULL);
--
-- Create model User
--
CREATE TABLE `auth_user` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `password` varchar(128) NOT NULL, `last_login` datetime(6) NOT NULL, `is_superuser` bool NOT NULL, `username` varchar(30) NOT NULL UNIQUE, `first_name` varchar(30) NOT NULL, `last_name` varchar(30) NOT NULL, `email` varchar(75) NOT NULL, `is_staff` bool NOT NULL, `is_active` bool NOT NULL, `date_joined` datetime(6) NOT NULL);
CREATE TABLE `auth_user_groups` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `user_id` integer NOT NULL, `group_id` integer NOT NULL);
CREATE TABLE `auth_user_user_permissions` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `user_id` integer NOT NULL, `permission_id` integer NOT NULL);
ALTER TABLE `auth_permission` ADD CONSTRAINT `auth_permission_content_type_id_codename_01ab375a_uniq` UNIQUE (`content_type_id`, `codename`);
ALTER TABLE `auth_permission` ADD CONSTRAINT `auth_permission_content_type_id_2f476e4b_fk_django_co` FOREIGN KEY (`content_type_id`) REFERENCES `django_content_type` (`id`);
ALTER TABLE `auth_group_permissions` ADD CONSTRAINT `auth_group_permissions_group_id_permission_id_0cd325b0_uniq` UNIQUE (`group_id`, `permission_id`);
ALTER TABLE `auth_group_permissions` ADD CONSTRAINT `auth_group_permissions_group_id_b120cbf9_fk_auth_group_id` FOREIGN KEY (`group_id`) REFERENCES `auth_group` (`id`);
ALTER TABLE `auth_group_permissions` ADD CONSTRAINT `auth_group_permissio_permission_id_84c5c92e_fk_auth_perm` FOREIGN KEY (`permission_id`) REFERENCES `auth_permission` (`id`);
ALTER TABLE `auth_user_groups` ADD CONSTRAINT `auth_user_groups_user_id_group_id_94350c0c_uniq` UNIQUE (`user_id`, `group_id`);
ALTER TABLE `auth_user_groups` ADD CONSTRAINT `auth_user_groups_user_id_6a12ed8b_fk_auth_user_id` FOREIGN KEY (`user_id`) REFERENCES `auth_user` (`id`);
ALTER TABLE `auth_user_groups` ADD CONSTRAINT `auth_user_groups_group_id_97559544_fk_auth_group_id` FOREIGN KEY (`group_id`) REFERENCES `auth_group` (`id`);
ALTER TABLE `auth_user_user_permissions` ADD CONSTRAINT `auth_user_user_permissions_user_id_permission_id_14a6b632_uniq` UNIQUE (`user_id`, `permission_id`);
ALTER TABLE `auth_user_user_permissions` ADD CONSTRAINT `auth_user_user_permissions_user_id_a95ead1b_fk_auth_user_id` FOREIGN KEY (`user_id`) REFERENCES `auth_user` (`id`);
ALTER TABLE `auth_user_user_permissions` ADD CONSTRAINT `auth_user_user_permi_permission_id_1fbb5f2c_fk_auth_perm` FOREIGN KEY (`permission_id`) REFERENCES `auth_permission` (`id`);
--
-- Alter field name on permission
--
ALTER TABLE `auth_permission` MODIFY `name` varchar(255) NOT NULL;
--
-- Alter field email on user
--
ALTER TABLE `auth_user` MODIFY `email` varchar(254) NOT NULL;
--
-- Alter field username on user
--
-- (no-op)
--
-- Alter field last_login on user
--
ALTER TABLE `auth_user` MODIFY `last_login` datetime(6) NULL;
--
-- Alter field username on user
--
-- (no-op)
--
-- Alter field username on user
--
ALTER TABLE `auth_user` MODIFY `username` varchar(150) NOT NULL;
--
-- Alter field last_name on user
--
ALTER TABLE `auth_user` MODIFY `last_name` varchar(150) NOT NULL;
--
-- Alter field name on group
--
ALTER TABLE `auth_group` MODIFY `name` varchar(150) NOT NULL;
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
--
-- Alter field first_name on user
--
ALTER TABLE `auth_user` MODIFY `first_name` varchar(150) NOT NULL;
--
-- Create model Grant
--
CREATE TABLE `access_grant` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `app_category_id` bigint NULL, `group_id` integer NOT NULL, `module_id` integer UNSIGNED NULL, CONSTRAINT `uniq_grant` UNIQUE (`group_id`, `module_id`, `app_category_id`));
ALTER TABLE `access_grant` ADD CONSTRAINT `access_grant_app_category_id_8a55b882_fk_inventory` FOREIGN KEY (`app_category_id`) REFERENCES `inventory_appcategory` (`id`);
ALTER TABLE `access_grant` ADD CONSTRAINT `access_grant_group_id_fca507ea_fk_auth_group_id` FOREIGN KEY (`group_id`) REFERENCES `auth_group` (`id`);
ALTER TABLE `access_grant` ADD CONSTRAINT `access_grant_module_id_6301bcfc_fk_modules_moduledefinition_id` FOREIGN KEY (`module_id`) REFERENCES `modules_moduledefinition` (`id`);
--
-- Create model KeyRefusal
--
CREATE TABLE `access_keyrefusal` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `created_at` datetime(6) NOT NULL, `client` varchar(100) NOT NULL, `operation` varchar(20) NOT NULL, `reason` longtext NOT NULL);
CREATE INDEX `access_keyrefusal_created_at_b547630a` ON `access_keyrefusal` (`created_at`);
CREATE INDEX `access_keyrefusal_client_843fabdb` ON `access_keyrefusal` (`client`);
--
-- Create model LogEntry
--
CREATE TABLE `django_admin_log` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `action_time` datetime(6) NOT NULL, `object_id` longtext NULL, `object_repr` varchar(200) NOT NULL, `action_flag` smallint UNSIGNED NOT NULL CHECK (`action_flag` >= 0), `change_message` longtext NOT NULL, `content_type_id` integer NULL, `user_id` integer NOT NULL);
ALTER TABLE `django_admin_log` ADD CONSTRAINT `django_admin_log_content_type_id_c4bce8eb_fk_django_co` FOREIGN KEY (`content_type_id`) REFERENCES `django_content_type` (`id`);
ALTER TABLE `django_admin_log` ADD CONSTRAINT `django_admin_log_user_id_c564eba6_fk_auth_user_id` FOREIGN KEY (`user_id`) REFERENCES `auth_user` (`id`);
--
-- Alter field action_time on logentry
--
-- (no-op)
--
-- Alter field action_flag on logentry
--
-- (no-op)
--
-- Create model ApiToken
--
CREATE TABLE `apitokens_apitoken` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(100) NOT NULL, `digest` varchar(64) NOT NULL UNIQUE, `prefix` varchar(12) NOT NULL, `created_at` datetime(6) NOT NULL, `expires_at` datetime(6) NULL, `last_used_at` datetime(6) NULL, `revoked_at` datetime(6) NULL, `user_id` integer NOT NULL);
ALTER TABLE `apitokens_apitoken` ADD CONSTRAINT `apitokens_apitoken_user_id_71f84436_fk_auth_user_id` FOREIGN KEY (`user_id`) REFERENCES `auth_user` (`id`);
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
--
-- Raw SQL operation
--
DROP TABLE IF EXISTS authtoken_token;
--
-- Create model CommandEvent
--
CREATE TABLE `audit_commandevent` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `host` varchar(253) NOT NULL, `user` varchar(64) NOT NULL, `source` varchar(255) NOT NULL, `cwd` varchar(1024) NOT NULL, `command` longtext NOT NULL, `event_time` datetime(6) NOT NULL, `received_at` datetime(6) NOT NULL, `seq` bigint UNSIGNED NOT NULL CHECK (`seq` >= 0), CONSTRAINT `uniq_event_host_seq` UNIQUE (`host`, `seq`));
CREATE INDEX `event_host_time_idx` ON `audit_commandevent` (`host`, `event_time` DESC);
CREATE INDEX `event_time_idx` ON `audit_commandevent` (`event_time` DESC);
CREATE INDEX `event_user_idx` ON `audit_commandevent` (`user`, `event_time` DESC);
--
-- Create model ChainHead
--
CREATE TABLE `audit_chainhead` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `scope` varchar(300) NOT NULL UNIQUE, `length` bigint UNSIGNED NOT NULL CHECK (`length` >= 0), `last_hash` varchar(64) NOT NULL, `anchor_pos` bigint UNSIGNED NOT NULL CHECK (`anchor_pos` >= 0), `anchor_hash` varchar(64) NOT NULL);
--
-- Create model AlertRule
--
CREATE TABLE `audit_alertrule` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(100) NOT NULL UNIQUE, `pattern` varchar(500) NOT NULL, `enabled` bool NOT NULL);
--
-- Create model IngestToken
--
CREATE TABLE `audit_ingesttoken` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(100) NOT NULL, `digest` varchar(64) NOT NULL UNIQUE, `prefix` varchar(12) NOT NULL, `created_by` varchar(150) NOT NULL, `created_at` datetime(6) NOT NULL, `revoked_at` datetime(6) NULL, `app_category_id` bigint NULL, `server_id` bigint NULL, CONSTRAINT `ingest_token_one_scope` CHECK ((`server_id` IS NULL XOR `app_category_id` IS NULL)));
--
-- Add field chain_pos to commandevent
--
ALTER TABLE `audit_commandevent` ADD COLUMN `chain_pos` bigint UNSIGNED NULL CHECK (`chain_pos` >= 0);
--
-- Add field prev_hash to commandevent
--
ALTER TABLE `audit_commandevent` ADD COLUMN `prev_hash` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `audit_commandevent` ALTER COLUMN `prev_hash` DROP DEFAULT;
--
-- Add field chain_hash to commandevent
--
ALTER TABLE `audit_commandevent` ADD COLUMN `chain_hash` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `audit_commandevent` ALTER COLUMN `chain_hash` DROP DEFAULT;
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
--
-- Create constraint uniq_event_host_pos on model commandevent
--
ALTER TABLE `audit_commandevent` ADD CONSTRAINT `uniq_event_host_pos` UNIQUE (`host`, `chain_pos`);
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
ALTER TABLE `audit_ingesttoken` ADD CONSTRAINT `audit_ingesttoken_app_category_id_d8c728c9_fk_inventory` FOREIGN KEY (`app_category_id`) REFERENCES `inventory_appcategory` (`id`);
ALTER TABLE `audit_ingesttoken` ADD CONSTRAINT `audit_ingesttoken_server_id_503bb8f3_fk_inventory_server_id` FOREIGN KEY (`server_id`) REFERENCES `inventory_server` (`id`);
--
-- Add field legacy_hash to chainhead
--
ALTER TABLE `audit_chainhead` ADD COLUMN `legacy_hash` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `audit_chainhead` ALTER COLUMN `legacy_hash` DROP DEFAULT;
--
-- Add field legacy_length to chainhead
--
ALTER TABLE `audit_chainhead` ADD COLUMN `legacy_length` bigint UNSIGNED DEFAULT 0 NOT NULL CHECK (`legacy_length` >= 0);
ALTER TABLE `audit_chainhead` ALTER COLUMN `legacy_length` DROP DEFAULT;
--
-- Add field seal to chainhead
--
ALTER TABLE `audit_chainhead` ADD COLUMN `seal` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `audit_chainhead` ALTER COLUMN `seal` DROP DEFAULT;
--
-- Add field seal_key to chainhead
--
ALTER TABLE `audit_chainhead` ADD COLUMN `seal_key` varchar(16) DEFAULT '' NOT NULL;
ALTER TABLE `audit_chainhead` ALTER COLUMN `seal_key` DROP DEFAULT;
--
-- Add field chain_key to commandevent
--
ALTER TABLE `audit_commandevent` ADD COLUMN `chain_key` varchar(16) DEFAULT '' NOT NULL;
ALTER TABLE `audit_commandevent` ALTER COLUMN `chain_key` DROP DEFAULT;
--
-- Create model RejectedEvent
--
CREATE TABLE `audit_rejectedevent` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `host` varchar(253) NOT NULL, `seq` bigint UNSIGNED NOT NULL CHECK (`seq` >= 0), `reason` varchar(500) NOT NULL, `first_at` datetime(6) NOT NULL, `last_at` datetime(6) NOT NULL, `attempts` integer UNSIGNED NOT NULL CHECK (`attempts` >= 0), `token_id` bigint NOT NULL, CONSTRAINT `uniq_rejected_host_seq` UNIQUE (`host`, `seq`));
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
ALTER TABLE `audit_rejectedevent` ADD CONSTRAINT `audit_rejectedevent_token_id_04b37ba7_fk_audit_ingesttoken_id` FOREIGN KEY (`token_id`) REFERENCES `audit_ingesttoken` (`id`);
--
-- Create model AccessAttempt
--
CREATE TABLE `axes_accessattempt` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `user_agent` varchar(255) NOT NULL, `ip_address` char(39) NULL, `username` varchar(255) NULL, `trusted` bool NOT NULL, `http_accept` varchar(1025) NOT NULL, `path_info` varchar(255) NOT NULL, `attempt_time` datetime(6) NOT NULL, `get_data` longtext NOT NULL, `post_data` longtext NOT NULL, `failures_since_start` integer UNSIGNED NOT NULL CHECK (`failures_since_start` >= 0));
--
-- Create model AccessLog
--
CREATE TABLE `axes_accesslog` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `user_agent` varchar(255) NOT NULL, `ip_address` char(39) NULL, `username` varchar(255) NULL, `trusted` bool NOT NULL, `http_accept` varchar(1025) NOT NULL, `path_info` varchar(255) NOT NULL, `attempt_time` datetime(6) NOT NULL, `logout_time` datetime(6) NULL);
--
-- Alter field ip_address on accessattempt
--
CREATE INDEX `axes_accessattempt_ip_address_10922d9c` ON `axes_accessattempt` (`ip_address`);
--
-- Alter field trusted on accessattempt
--
CREATE INDEX `axes_accessattempt_trusted_0eddf52e` ON `axes_accessattempt` (`trusted`);
--
-- Alter field user_agent on accessattempt
--
CREATE INDEX `axes_accessattempt_user_agent_ad89678b` ON `axes_accessattempt` (`user_agent`);
--
-- Alter field username on accessattempt
--
CREATE INDEX `axes_accessattempt_username_3f2d4ca0` ON `axes_accessattempt` (`username`);
--
-- Alter field ip_address on accesslog
--
CREATE INDEX `axes_accesslog_ip_address_86b417e5` ON `axes_accesslog` (`ip_address`);
--
-- Alter field trusted on accesslog
--
CREATE INDEX `axes_accesslog_trusted_496c5681` ON `axes_accesslog` (`trusted`);
--
-- Alter field user_agent on accesslog
--
CREATE INDEX `axes_accesslog_user_agent_0e659004` ON `axes_accesslog` (`user_agent`);
--
-- Alter field username on accesslog
--
CREATE INDEX `axes_accesslog_username_df93064b` ON `axes_accesslog` (`username`);
--
-- Alter field failures_since_start on accessattempt
--
-- (no-op)
--
-- Alter field get_data on accessattempt
--
-- (no-op)
--
-- Alter field http_accept on accessattempt
--
-- (no-op)
--
-- Alter field ip_address on accessattempt
--
-- (no-op)
--
-- Alter field path_info on accessattempt
--
-- (no-op)
--
-- Alter field post_data on accessattempt
--
-- (no-op)
--
-- Alter field http_accept on accesslog
--
-- (no-op)
--
-- Alter field ip_address on accesslog
--
-- (no-op)
--
-- Alter field path_info on accesslog
--
-- (no-op)
--
-- Change Meta options on accessattempt
--
-- (no-op)
--
-- Change Meta options on accesslog
--
-- (no-op)
--
-- Alter field attempt_time on accessattempt
--
-- (no-op)
--
-- Alter field user_agent on accessattempt
--
-- (no-op)
--
-- Alter field username on accessattempt
--
-- (no-op)
--
-- Alter field attempt_time on accesslog
--
-- (no-op)
--
-- Alter field logout_time on accesslog
--
-- (no-op)
--
-- Alter field user_agent on accesslog
--
-- (no-op)
--
-- Alter field username on accesslog
--
-- (no-op)
--
-- Remove field trusted from accessattempt
--
ALTER TABLE `axes_accessattempt` DROP COLUMN `trusted`;
--
-- Remove field trusted from accesslog
--
ALTER TABLE `axes_accesslog` DROP COLUMN `trusted`;
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
--
-- Alter unique_together for accessattempt (1 constraint(s))
--
ALTER TABLE `axes_accessattempt` ADD CONSTRAINT `axes_accessattempt_username_ip_address_user_agent_8ea22282_uniq` UNIQUE (`username`, `ip_address`, `user_agent`);
--
-- Create model AccessFailureLog
--
CREATE TABLE `axes_accessfailurelog` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `user_agent` varchar(255) NOT NULL, `ip_address` char(39) NULL, `username` varchar(255) NULL, `http_accept` varchar(1025) NOT NULL, `path_info` varchar(255) NOT NULL, `attempt_time` datetime(6) NOT NULL, `locked_out` bool NOT NULL);
CREATE INDEX `axes_accessfailurelog_user_agent_ea145dda` ON `axes_accessfailurelog` (`user_agent`);
CREATE INDEX `axes_accessfailurelog_ip_address_2e9f5a7f` ON `axes_accessfailurelog` (`ip_address`);
CREATE INDEX `axes_accessfailurelog_username_a8b7e8a4` ON `axes_accessfailurelog` (`username`);
--
-- Add field session_hash to accesslog
--
ALTER TABLE `axes_accesslog` ADD COLUMN `session_hash` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `axes_accesslog` ALTER COLUMN `session_hash` DROP DEFAULT;
--
-- Create model AccessAttemptExpiration
--
CREATE TABLE `axes_accessattemptexpiration` (`access_attempt_id` integer NOT NULL PRIMARY KEY, `expires_at` datetime(6) NOT NULL);
ALTER TABLE `axes_accessattemptexpiration` ADD CONSTRAINT `axes_accessattemptex_access_attempt_id_6b73a47a_fk_axes_acce` FOREIGN KEY (`access_attempt_id`) REFERENCES `axes_accessattempt` (`id`);
--
-- Create model Zone
--
CREATE TABLE `inventory_zone` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(64) NOT NULL UNIQUE, `address` varchar(255) NOT NULL, `client_id` varchar(100) NOT NULL, `sealed_key` longtext NOT NULL, `backend` varchar(20) NOT NULL, `notes` longtext NOT NULL);
--
-- Alter field zone on server
--
-- (no-op)
--
-- Create model Job
--
CREATE TABLE `jobs_job` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `requested_by` varchar(150) NOT NULL, `client` varchar(100) NOT NULL, `targets` json NOT NULL, `params` json NOT NULL, `rollout` json NULL, `rollout_stop` longtext NOT NULL, `backend` varchar(20) NOT NULL, `daemon` varchar(100) NOT NULL, `timeout` double precision NULL, `status` varchar(12) NOT NULL, `error` longtext NOT NULL, `created_at` datetime(6) NOT NULL, `started_at` datetime(6) NULL, `finished_at` datetime(6) NULL, `module_id` integer UNSIGNED NOT NULL);
--
-- Create model HostResult
--
CREATE TABLE `jobs_hostresult` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `host` varchar(253) NOT NULL, `status` varchar(12) NOT NULL, `rc` integer NULL, `stdout` longtext NOT NULL, `stderr` longtext NOT NULL, `duration` double precision NOT NULL, `truncated` bool NOT NULL, `seq` integer UNSIGNED NOT NULL CHECK (`seq` >= 0), `updated_at` datetime(6) NOT NULL, `job_id` bigint NOT NULL);
--
-- Create index job_created_idx on field(s) -created_at of model job
--
CREATE INDEX `job_created_idx` ON `jobs_job` (`created_at` DESC);
--
-- Create index job_status_idx on field(s) status, -created_at of model job
--
CREATE INDEX `job_status_idx` ON `jobs_job` (`status`, `created_at` DESC);
--
-- Create index job_module_idx on field(s) module, -created_at of model job
--
CREATE INDEX `job_module_idx` ON `jobs_job` (`module_id`, `created_at` DESC);
--
-- Create index job_user_idx on field(s) requested_by, -created_at of model job
--
CREATE INDEX `job_user_idx` ON `jobs_job` (`requested_by`, `created_at` DESC);
--
-- Create index result_host_idx on field(s) host, job of model hostresult
--
CREATE INDEX `result_host_idx` ON `jobs_hostresult` (`host`, `job_id`);
--
-- Create index result_job_seq_idx on field(s) job, seq of model hostresult
--
CREATE INDEX `result_job_seq_idx` ON `jobs_hostresult` (`job_id`, `seq`);
--
-- Create constraint uniq_result_job_host on model hostresult
--
ALTER TABLE `jobs_hostresult` ADD CONSTRAINT `uniq_result_job_host` UNIQUE (`job_id`, `host`);
ALTER TABLE `jobs_job` ADD CONSTRAINT `jobs_job_module_id_6e2a9faa_fk_modules_moduledefinition_id` FOREIGN KEY (`module_id`) REFERENCES `modules_moduledefinition` (`id`);
CREATE INDEX `jobs_job_requested_by_f4b18dc6` ON `jobs_job` (`requested_by`);
CREATE INDEX `jobs_job_daemon_2c0761da` ON `jobs_job` (`daemon`);
ALTER TABLE `jobs_hostresult` ADD CONSTRAINT `jobs_hostresult_job_id_30cbb88e_fk_jobs_job_id` FOREIGN KEY (`job_id`) REFERENCES `jobs_job` (`id`);
--
-- Add field chain_pos to job
--
ALTER TABLE `jobs_job` ADD COLUMN `chain_pos` bigint UNSIGNED NULL CHECK (`chain_pos` >= 0);
--
-- Add field prev_hash to job
--
ALTER TABLE `jobs_job` ADD COLUMN `prev_hash` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `jobs_job` ALTER COLUMN `prev_hash` DROP DEFAULT;
--
-- Add field chain_hash to job
--
ALTER TABLE `jobs_job` ADD COLUMN `chain_hash` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `jobs_job` ALTER COLUMN `chain_hash` DROP DEFAULT;
--
-- Create constraint uniq_job_chain_pos on model job
--
ALTER TABLE `jobs_job` ADD CONSTRAINT `uniq_job_chain_pos` UNIQUE (`chain_pos`);
--
-- Add field last_seq to job
--
ALTER TABLE `jobs_job` ADD COLUMN `last_seq` integer UNSIGNED DEFAULT 0 NOT NULL CHECK (`last_seq` >= 0);
ALTER TABLE `jobs_job` ALTER COLUMN `last_seq` DROP DEFAULT;
--
-- Create model JobPart
--
CREATE TABLE `jobs_jobpart` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `zone` varchar(64) NOT NULL, `hosts` json NOT NULL, `daemon` varchar(100) NOT NULL, `status` varchar(12) NOT NULL, `error` longtext NOT NULL, `rollout_stop` longtext NOT NULL, `started_at` datetime(6) NULL, `finished_at` datetime(6) NULL, `job_id` bigint NOT NULL, CONSTRAINT `uniq_part_job_zone` UNIQUE (`job_id`, `zone`));
ALTER TABLE `jobs_jobpart` ADD CONSTRAINT `jobs_jobpart_job_id_7518a737_fk_jobs_job_id` FOREIGN KEY (`job_id`) REFERENCES `jobs_job` (`id`);
CREATE INDEX `part_daemon_idx` ON `jobs_jobpart` (`daemon`, `status`);
--
-- Rename model HostResult to JobHost
--
RENAME TABLE `jobs_hostresult` TO `jobs_jobhost`;
--
-- Alter field status on jobhost
--
-- (no-op)
--
-- Add field record_format to job
--
ALTER TABLE `jobs_job` ADD COLUMN `record_format` smallint UNSIGNED DEFAULT 1 NOT NULL CHECK (`record_format` >= 0);
ALTER TABLE `jobs_job` ALTER COLUMN `record_format` DROP DEFAULT;
--
-- Alter field record_format on job
--
-- (no-op)
--
-- Add field error to jobhost
--
ALTER TABLE `jobs_jobhost` ADD COLUMN `error` longtext NOT NULL;
--
-- Alter field status on jobhost
--
-- (no-op)
--
-- Create model JobOutput
--
CREATE TABLE `jobs_joboutput` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `host` varchar(253) NOT NULL, `step` integer UNSIGNED NOT NULL CHECK (`step` >= 0), `stream` varchar(6) NOT NULL, `text` longtext NOT NULL, `seq` integer UNSIGNED NOT NULL CHECK (`seq` >= 0), `job_id` bigint NOT NULL);
--
-- Create model JobStep
--
CREATE TABLE `jobs_jobstep` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `host` varchar(253) NOT NULL, `number` integer UNSIGNED NOT NULL CHECK (`number` >= 0), `action` longtext NOT NULL, `status` varchar(12) NOT NULL, `rc` integer NULL, `stdout` longtext NOT NULL, `stderr` longtext NOT NULL, `truncated` bool NOT NULL, `started_at` datetime(6) NULL, `duration` double precision NOT NULL, `seq` integer UNSIGNED NOT NULL CHECK (`seq` >= 0), `job_id` bigint NOT NULL, CONSTRAINT `uniq_step_job_host` UNIQUE (`job_id`, `host`, `number`));
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
--
-- Remove field stderr from jobhost
--
ALTER TABLE `jobs_jobhost` DROP COLUMN `stderr`;
--
-- Remove field stdout from jobhost
--
ALTER TABLE `jobs_jobhost` DROP COLUMN `stdout`;
ALTER TABLE `jobs_joboutput` ADD CONSTRAINT `jobs_joboutput_job_id_b1799618_fk_jobs_job_id` FOREIGN KEY (`job_id`) REFERENCES `jobs_job` (`id`);
CREATE INDEX `output_job_seq_idx` ON `jobs_joboutput` (`job_id`, `seq`);
CREATE INDEX `output_job_step_idx` ON `jobs_joboutput` (`job_id`, `host`, `step`);
ALTER TABLE `jobs_jobstep` ADD CONSTRAINT `jobs_jobstep_job_id_dccb215d_fk_jobs_job_id` FOREIGN KEY (`job_id`) REFERENCES `jobs_job` (`id`);
CREATE INDEX `step_job_seq_idx` ON `jobs_jobstep` (`job_id`, `seq`);
--
-- Create model JobClaim
--
CREATE TABLE `jobs_jobclaim` (`key` varchar(40) NOT NULL PRIMARY KEY, `daemon` varchar(100) NOT NULL, `instance` varchar(64) NOT NULL, `locks` json NOT NULL, `cancel` bool NOT NULL, `claimed_at` datetime(6) NOT NULL);
--
-- Create model ReplayedWrite
--
CREATE TABLE `jobs_replayedwrite` (`key` varchar(64) NOT NULL PRIMARY KEY, `at` datetime(6) NOT NULL);
--
-- Create model ZoneQueue
--
CREATE TABLE `jobs_zonequeue` (`name` varchar(100) NOT NULL PRIMARY KEY);
--
-- Add field order to job
--
ALTER TABLE `jobs_job` ADD COLUMN `order` longtext NOT NULL;
--
-- Add field request to job
--
ALTER TABLE `jobs_job` ADD COLUMN `request` varchar(64) NULL;
--
-- Add field order to jobpart
--
ALTER TABLE `jobs_jobpart` ADD COLUMN `order` longtext NOT NULL;
--
-- Alter field status on jobhost
--
-- (no-op)
--
-- Alter field status on jobstep
--
-- (no-op)
--
-- Create constraint uniq_job_request on model job
--
ALTER TABLE `jobs_job` ADD CONSTRAINT `uniq_job_request` UNIQUE (`client`, `request`);
--
-- Add field job to jobclaim
--
ALTER TABLE `jobs_jobclaim` ADD COLUMN `job_id` bigint NOT NULL , ADD CONSTRAINT `jobs_jobclaim_job_id_8d36b234_fk_jobs_job_id` FOREIGN KEY (`job_id`) REFERENCES `jobs_job`(`id`);
--
-- Add field part to jobclaim
--
ALTER TABLE `jobs_jobclaim` ADD COLUMN `part_id` bigint NULL , ADD CONSTRAINT `jobs_jobclaim_part_id_00e8db4e_fk_jobs_jobpart_id` FOREIGN KEY (`part_id`) REFERENCES `jobs_jobpart`(`id`);
CREATE INDEX `jobs_jobclaim_daemon_ab5b1476` ON `jobs_jobclaim` (`daemon`);
CREATE INDEX `jobs_jobclaim_instance_37dcd696` ON `jobs_jobclaim` (`instance`);
CREATE INDEX `jobs_replayedwrite_at_ab1cd63b` ON `jobs_replayedwrite` (`at`);
--
-- Add field chain_key to job
--
ALTER TABLE `jobs_job` ADD COLUMN `chain_key` varchar(16) DEFAULT '' NOT NULL;
ALTER TABLE `jobs_job` ALTER COLUMN `chain_key` DROP DEFAULT;
--
-- Raw Python operation
--
-- THIS OPERATION CANNOT BE WRITTEN AS SQL
--
-- Change Meta options on moduledefinition
--
-- (no-op)
--
-- Add field enabled_at to moduledefinition
--
ALTER TABLE `modules_moduledefinition` ADD COLUMN `enabled_at` datetime(6) NULL;
--
-- Add field enabled_by to moduledefinition
--
ALTER TABLE `modules_moduledefinition` ADD COLUMN `enabled_by` varchar(150) DEFAULT '' NOT NULL;
ALTER TABLE `modules_moduledefinition` ALTER COLUMN `enabled_by` DROP DEFAULT;
--
-- Add field enabled_hash to moduledefinition
--
ALTER TABLE `modules_moduledefinition` ADD COLUMN `enabled_hash` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `modules_moduledefinition` ALTER COLUMN `enabled_hash` DROP DEFAULT;
--
-- Add field file_hash to moduledefinition
--
ALTER TABLE `modules_moduledefinition` ADD COLUMN `file_hash` varchar(64) DEFAULT '' NOT NULL;
ALTER TABLE `modules_moduledefinition` ALTER COLUMN `file_hash` DROP DEFAULT;
--
-- Add field file_schema to moduledefinition
--
ALTER TABLE `modules_moduledefinition` ADD COLUMN `file_schema` json NULL;
--
-- Add field load_error to moduledefinition
--
ALTER TABLE `modules_moduledefinition` ADD COLUMN `load_error` longtext NOT NULL;
--
-- Add field reported_at to moduledefinition
--
ALTER TABLE `modules_moduledefinition` ADD COLUMN `reported_at` datetime(6) NULL;
--
-- Add field schema_changed to moduledefinition
--
ALTER TABLE `modules_moduledefinition` ADD COLUMN `schema_changed` bool DEFAULT b'0' NOT NULL;
ALTER TABLE `modules_moduledefinition` ALTER COLUMN `schema_changed` DROP DEFAULT;
--
-- Alter field enabled on moduledefinition
--
-- (no-op)
--
-- Create model Session
--
CREATE TABLE `django_session` (`session_key` varchar(40) NOT NULL PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL);
CREATE INDEX `django_session_expire_date_a5c62663` ON `django_session` (`expire_date`);
