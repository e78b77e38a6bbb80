// Timing a customer against a stranger: calls go in pairs, back to back and
// in random order, so a drift in the machine's load over the run touches
// both sides alike. Each pair adds one sample to each side.
export type Side = "known" | "unknown";

export async function samplePairs(
  once: (side: Side) => Promise<number>,
  warmUp: number,
  samples: number,
  into: { known: number[]; unknown: number[] },
): Promise<void> {
  const pair = async (): Promise<[number, number]> => {
    const customerFirst = Math.random() < 0.5;
    const first = await once(customerFirst ? "known" : "unknown");
    const second = await once(customerFirst ? "unknown" : "known");
    return customerFirst ? [first, second] : [second, first];
  };
  for (let i = 0; i < warmUp; i++) await pair();
  for (let i = 0; i < samples; i++) {
    const [k, u] = await pair();
    into.known.push(k);
    into.unknown.push(u);
  }
}
