/** Recommendations for the confirmation page; never fails the checkout. */
export interface RecommendationsResult {
  readonly items: unknown[];
  readonly degraded: boolean;
}

export interface Recommender {
  recommend(customerId: string): Promise<RecommendationsResult>;
}

/**
 * Fetches recommendations under a short timeout. Any failure (timeout, error status,
 * bad body, connection reset) degrades to an empty list: recommendations are optional.
 */
export class HttpRecommender implements Recommender {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs: number,
  ) {}

  async recommend(customerId: string): Promise<RecommendationsResult> {
    try {
      const response = await fetch(
        `${this.baseUrl}/recommendations?customerId=${encodeURIComponent(customerId)}`,
        {
          signal: AbortSignal.timeout(this.timeoutMs),
        },
      );
      if (!response.ok) {
        await response.body?.cancel();
        return { items: [], degraded: true };
      }
      const body = (await response.json()) as { recommendations?: unknown };
      return Array.isArray(body.recommendations)
        ? { items: body.recommendations.slice(0, 20), degraded: false }
        : { items: [], degraded: true };
    } catch {
      return { items: [], degraded: true };
    }
  }
}
