ALTER TYPE "public"."upload_status" ADD VALUE 'given_up';--> statement-breakpoint
ALTER TYPE "public"."upload_status" ADD VALUE 'awaiting_approval';--> statement-breakpoint
ALTER TYPE "public"."webhook_event" ADD VALUE 'upload.progress';--> statement-breakpoint
ALTER TABLE "file_uploads" ADD COLUMN "assembly_attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "file_uploads" ADD COLUMN "object_shape" jsonb;