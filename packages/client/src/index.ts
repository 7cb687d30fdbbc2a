// The klstore TypeScript client.

export { type StatusDetails, statusDetails } from "@klstore/proto";
export * from "./klstore-client.ts";
