import { OutboundHttpClient } from './http/outbound';

/** Recommendations for the confirmation page; never fails the checkout. */
export interface RecommendationsResult {
  readonly items: unknown[];
  readonly degraded: boolean;
}

export interface Recommender {
  recommend(customerId: string): Promise<RecommendationsResult>;
}

const degraded = (): RecommendationsResult => ({ items: [], degraded: true });

/**
 * Fetches recommendations under a short timeout (the response body included). Any
 * failure (timeout, error status, bad body, connection reset) degrades to an empty
 * list: recommendations are optional.
 */
export class HttpRecommender implements Recommender {
  private readonly http: OutboundHttpClient;

  constructor(
    baseUrl: string,
    private readonly timeoutMs: number,
  ) {
    this.http = new OutboundHttpClient(baseUrl);
  }

  async recommend(customerId: string): Promise<RecommendationsResult> {
    try {
      const response = await this.http.request({
        method: 'GET',
        path: `/recommendations?customerId=${encodeURIComponent(customerId)}`,
        timeoutMs: this.timeoutMs,
      });
      if (!response.ok) return degraded();
      const body = JSON.parse(response.body) as { recommendations?: unknown } | null;
      return Array.isArray(body?.recommendations)
        ? { items: body.recommendations.slice(0, 20), degraded: false }
        : degraded();
    } catch {
      return degraded();
    }
  }

  /** Closes the kept-alive connections to the recommendation engine. */
  close(): void {
    this.http.close();
  }
}
