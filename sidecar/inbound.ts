/**
 * The inbound calls this replica is running, by request id: what an outbound call made through the call
 * API inherits (the gateway's delegation token, the traceparent and the remaining deadline).
 */
export interface InboundCall {
  /** The delegation token the gateway sent with the call (only when it carried verified claims). */
  delegation?: string;
  traceparent?: string;
  /** Epoch ms on this machine's clock. */
  deadline: number;
}

export class InboundCalls {
  private readonly calls = new Map<string, InboundCall>();

  get size(): number {
    return this.calls.size;
  }

  add(requestId: string, call: InboundCall): void {
    this.calls.set(requestId, call);
  }

  /** Removes the entry only if it is still this call's (a duplicate request id may have replaced it). */
  remove(requestId: string, call: InboundCall): void {
    if (this.calls.get(requestId) === call) this.calls.delete(requestId);
  }

  get(requestId: string | undefined): InboundCall | undefined {
    return requestId ? this.calls.get(requestId) : undefined;
  }
}
