import { Watch } from '@kubernetes/client-node';

/**
 * client-node's Watch, asking for bookmarks: the API server then sends BOOKMARK events carrying
 * the latest resourceVersion while nothing changes, so a watch that breaks resumes from there
 * instead of from an old version it may no longer have (410 Gone, and a whole re-list).
 */
export class BookmarkWatch extends Watch {
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(path, { ...queryParams, allowWatchBookmarks: true }, callback, done);
  }
}
