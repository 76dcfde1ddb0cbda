/**
 * Shapes of the decoded/encoded protobuf messages as @grpc/proto-loader produces them with the
 * options in proto.ts (keepCase, enums as numbers, no defaults, oneof discriminators). Everything
 * is optional because proto3 omits default values on the wire.
 */

export interface WireHeaderValue {
  key?: string;
  value?: string;
  raw_value?: Buffer | Uint8Array;
}

export interface WireHeaderMap {
  headers?: WireHeaderValue[];
}

export interface WireHeaderValueOption {
  header?: WireHeaderValue;
  append?: { value?: boolean };
  append_action?: number;
  keep_empty_value?: boolean;
}

export interface WireHeaderMutation {
  set_headers?: WireHeaderValueOption[];
  remove_headers?: string[];
}

export interface WireBodyMutation {
  body?: Buffer | Uint8Array;
  clear_body?: boolean;
  /** oneof discriminator: which member was on the wire. */
  mutation?: 'body' | 'clear_body';
}

export interface WireCommonResponse {
  status?: number;
  header_mutation?: WireHeaderMutation;
  body_mutation?: WireBodyMutation;
  clear_route_cache?: boolean;
}

export interface WireImmediateResponse {
  status?: { code?: number };
  headers?: WireHeaderMutation;
  body?: Buffer | Uint8Array;
  details?: string;
}

export interface WireHttpHeaders {
  headers?: WireHeaderMap;
  end_of_stream?: boolean;
}

export interface WireHttpBody {
  body?: Buffer | Uint8Array;
  end_of_stream?: boolean;
}

export interface WireProtocolConfiguration {
  request_body_mode?: number;
  response_body_mode?: number;
  send_body_without_waiting_for_header_response?: boolean;
}

export interface WireProcessingRequest {
  request_headers?: WireHttpHeaders;
  response_headers?: WireHttpHeaders;
  request_body?: WireHttpBody;
  response_body?: WireHttpBody;
  observability_mode?: boolean;
  protocol_config?: WireProtocolConfiguration;
  request?: 'request_headers' | 'response_headers' | 'request_body' | 'response_body';
}

export interface WireProcessingResponse {
  request_headers?: { response?: WireCommonResponse };
  response_headers?: { response?: WireCommonResponse };
  request_body?: { response?: WireCommonResponse };
  response_body?: { response?: WireCommonResponse };
  immediate_response?: WireImmediateResponse;
  override_message_timeout?: { seconds?: number | string; nanos?: number };
  response?: 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'immediate_response';
}

/** Upstream enum numbers (processing_mode.proto, external_processor.proto, base.proto). */
export const BodySendMode = { NONE: 0, BUFFERED: 2 } as const;
export const ResponseStatus = { CONTINUE: 0, CONTINUE_AND_REPLACE: 1 } as const;
export const HeaderAppendAction = {
  APPEND_IF_EXISTS_OR_ADD: 0,
  ADD_IF_ABSENT: 1,
  OVERWRITE_IF_EXISTS_OR_ADD: 2,
  OVERWRITE_IF_EXISTS: 3,
} as const;
