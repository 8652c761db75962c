CREATE TYPE "public"."concat_kind" AS ENUM('partial', 'final');--> statement-breakpoint
CREATE TYPE "public"."webhook_event" AS ENUM('upload.created', 'upload.completed', 'upload.failed', 'upload.aborted', 'upload.expired');--> statement-breakpoint
ALTER TYPE "public"."upload_status" ADD VALUE 'rejected';--> statement-breakpoint
CREATE TABLE "webhook_outbox" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "webhook_outbox_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"event" "webhook_event" NOT NULL,
	"upload_id" uuid NOT NULL,
	"payload" jsonb NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp (3) with time zone,
	"last_error" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "file_uploads" ADD COLUMN "hash_state" text;--> statement-breakpoint
ALTER TABLE "file_uploads" ADD COLUMN "sha256" text;--> statement-breakpoint
ALTER TABLE "file_uploads" ADD COLUMN "concat" "concat_kind";--> statement-breakpoint
ALTER TABLE "file_uploads" ADD COLUMN "concat_partials" uuid[];--> statement-breakpoint
ALTER TABLE "upload_parts" ADD COLUMN "md5" text;--> statement-breakpoint
ALTER TABLE "upload_parts" ADD COLUMN "hash_state" text;--> statement-breakpoint
CREATE INDEX "webhook_outbox_due_idx" ON "webhook_outbox" USING btree ("next_attempt_at") WHERE delivered_at is null;