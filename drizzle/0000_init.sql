CREATE TYPE "public"."part_status" AS ENUM('pending', 'stored');--> statement-breakpoint
CREATE TYPE "public"."upload_protocol" AS ENUM('tus', 'direct');--> statement-breakpoint
CREATE TYPE "public"."upload_status" AS ENUM('pending', 'uploading', 'completed', 'failed', 'aborted', 'expired');--> statement-breakpoint
CREATE TABLE "file_uploads" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"filename" text,
	"total_size" bigint,
	"mime_type" text,
	"protocol" "upload_protocol" NOT NULL,
	"storage_key" text NOT NULL,
	"s3_upload_id" text,
	"status" "upload_status" DEFAULT 'pending' NOT NULL,
	"bytes_received" bigint DEFAULT 0 NOT NULL,
	"stored_offset" bigint,
	"part_size" bigint,
	"metadata" jsonb,
	"error" text,
	"locked_until" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp (3) with time zone,
	"expires_at" timestamp (3) with time zone,
	CONSTRAINT "file_uploads_s3_upload_id_unique" UNIQUE("s3_upload_id")
);
--> statement-breakpoint
CREATE TABLE "upload_parts" (
	"upload_id" uuid NOT NULL,
	"part_number" integer NOT NULL,
	"size" bigint NOT NULL,
	"etag" text,
	"status" "part_status" DEFAULT 'pending' NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "upload_parts_upload_id_part_number_pk" PRIMARY KEY("upload_id","part_number")
);
--> statement-breakpoint
ALTER TABLE "upload_parts" ADD CONSTRAINT "upload_parts_upload_id_file_uploads_id_fk" FOREIGN KEY ("upload_id") REFERENCES "public"."file_uploads"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "file_uploads_user_id_idx" ON "file_uploads" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "file_uploads_status_idx" ON "file_uploads" USING btree ("status");