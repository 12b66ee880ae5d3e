// The cross-browser suite (suite.mjs) in webkit, through its WebDriver.
import { suite } from './suite.mjs';

suite('webkit');
