/**
 * A job every replica runs in the background: once at start, then
 * `intervalMs` after each run ends, so runs never overlap. A failed run is
 * reported and the next one comes as usual. The timer never keeps the
 * process alive.
 */
export function startBackgroundJob(
  run: (signal: AbortSignal) => Promise<unknown>,
  intervalMs: number,
  onError: (error: unknown) => void,
) {
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = () => {
    timer = undefined;
    running = run(stopping.signal)
      .then(() => undefined, onError)
      .finally(() => {
        running = undefined;
        if (stopping.signal.aborted) return;
        timer = setTimeout(tick, intervalMs);
        timer.unref();
      });
  };
  tick();
  return {
    /** No new run starts; resolves once the one under way (told through its signal) has ended. */
    async stop(): Promise<void> {
      stopping.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
