/** `node --require` this to give every serial port of the process the poller fix (bench:data-path --rearm-poller). */
import { rearmEveryPoller } from './poller-rearm';

rearmEveryPoller();
