import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** `#/configs/abc` → ['configs', 'abc']; an empty hash is the configs list. */
  readonly path: readonly string[];
  readonly query: URLSearchParams;
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function readRoute(): Route {
  const hash = window.location.hash.replace(/^#\/?/, '');
  const [pathText = '', queryText = ''] = hash.split('?', 2);
  const path = pathText.split('/').filter((part) => part !== '');
  return {
    path: path.length === 0 ? ['configs'] : path.map(decodePart),
    query: new URLSearchParams(queryText),
  };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(readRoute);
  useEffect(() => {
    const onChange = () => setRoute(readRoute());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function navigate(hash: string): void {
  window.location.hash = hash;
}
